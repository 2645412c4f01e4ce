use keyfleet_api::LEADER_API_METADATA;
use keyfleet_api::LEADER_ID_METADATA;
use tonic::Status;

use crate::endpoint::endpoint_uri;

/// The leader named in the metadata of an `UNAVAILABLE` status from a node that is not the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderHint {
    /// Leader's node id, if the node sent a valid non-zero one.
    pub leader_id: Option<u64>,

    /// URI of the leader's node API, such as `http://127.0.0.1:7001`.
    pub api_endpoint: String,
}

impl LeaderHint {
    /// Reads the hint from the metadata of `status`.
    ///
    /// Returns `None` when the leader API address is missing, empty or not ASCII, because the
    /// client cannot follow a hint without an address. A missing or invalid leader id only
    /// leaves `leader_id` empty.
    pub fn from_status(status: &Status) -> Option<Self> {
        let metadata = status.metadata();

        let api_address = metadata.get(LEADER_API_METADATA)?.to_str().ok()?.trim();
        if api_address.is_empty() {
            return None;
        }

        let leader_id = metadata
            .get(LEADER_ID_METADATA)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .filter(|id| *id != 0);

        Some(Self {
            leader_id,
            api_endpoint: endpoint_uri(api_address),
        })
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tonic::metadata::MetadataMap;

    use super::*;

    fn unavailable_with(pairs: &[(&'static str, &str)]) -> Status {
        let mut metadata = MetadataMap::new();

        for (key, value) in pairs {
            metadata.insert(*key, value.parse().expect("ASCII metadata value"));
        }

        Status::with_metadata(Code::Unavailable, "not the leader", metadata)
    }

    #[test]
    fn hint_with_id_and_address() {
        let status = unavailable_with(&[
            (LEADER_ID_METADATA, "2"),
            (LEADER_API_METADATA, "127.0.0.1:7002"),
        ]);

        let hint = LeaderHint::from_status(&status).expect("hint is present");

        assert_eq!(hint.leader_id, Some(2));
        assert_eq!(hint.api_endpoint, "http://127.0.0.1:7002");
    }

    #[test]
    fn hint_without_address_is_none() {
        let status = unavailable_with(&[(LEADER_ID_METADATA, "2")]);

        assert_eq!(LeaderHint::from_status(&status), None);
    }

    #[test]
    fn hint_with_empty_address_is_none() {
        let status = unavailable_with(&[(LEADER_ID_METADATA, "2"), (LEADER_API_METADATA, "")]);

        assert_eq!(LeaderHint::from_status(&status), None);
    }

    #[test]
    fn hint_with_invalid_id_keeps_address() {
        for id in ["0", "leader", "-1", ""] {
            let status = unavailable_with(&[
                (LEADER_ID_METADATA, id),
                (LEADER_API_METADATA, "127.0.0.1:7003"),
            ]);

            let hint = LeaderHint::from_status(&status).expect("hint is present");

            assert_eq!(hint.leader_id, None, "leader id {id:?}");
            assert_eq!(
                hint.api_endpoint, "http://127.0.0.1:7003",
                "leader id {id:?}"
            );
        }
    }

    #[test]
    fn hint_address_with_scheme_is_kept() {
        let status = unavailable_with(&[(LEADER_API_METADATA, "http://127.0.0.1:7004")]);

        let hint = LeaderHint::from_status(&status).expect("hint is present");

        assert_eq!(hint.api_endpoint, "http://127.0.0.1:7004");
    }

    #[test]
    fn status_without_metadata_has_no_hint() {
        let status = Status::unavailable("no quorum");

        assert_eq!(LeaderHint::from_status(&status), None);
    }
}
