use std::fmt::Display;

/// Node that a routed call is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The leader, found through hints and by trying the endpoints in turn.
    Leader,

    /// The first endpoint the router was built with, whatever its role.
    FirstEndpoint,
}

/// Name, request id and route of one call through a [`crate::LeaderRouter`], for routing and
/// logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    name: &'static str,
    request_id: Option<String>,
    route: Route,
}

impl Operation {
    /// Builds an operation named `name` that goes to the leader.
    pub fn on_leader(name: &'static str) -> Self {
        Self {
            name,
            request_id: None,
            route: Route::Leader,
        }
    }

    /// Builds an operation named `name` that goes to the first endpoint only.
    pub fn on_first_endpoint(name: &'static str) -> Self {
        Self {
            name,
            request_id: None,
            route: Route::FirstEndpoint,
        }
    }

    /// Sets the request id that the retry logs show. It must not be secret.
    pub fn with_request_id(mut self, request_id: impl Display) -> Self {
        self.request_id = Some(request_id.to_string());
        self
    }

    /// Returns the operation's name, such as `write`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Returns the request id given to [`Operation::with_request_id`], if any.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// Returns the node the operation is sent to.
    pub fn route(&self) -> Route {
        self.route
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_leader_has_no_request_id() {
        let operation = Operation::on_leader("write");

        assert_eq!(operation.name(), "write");
        assert_eq!(operation.route(), Route::Leader);
        assert_eq!(operation.request_id(), None);
    }

    #[test]
    fn request_id_is_displayed() {
        let operation = Operation::on_first_endpoint("initialize").with_request_id(42);

        assert_eq!(operation.route(), Route::FirstEndpoint);
        assert_eq!(operation.request_id(), Some("42"));
    }
}
