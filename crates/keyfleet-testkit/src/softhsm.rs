use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tempfile::TempDir;

/// Places where Debian and other distributions install the SoftHSM2 PKCS#11 module.
const MODULE_CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
];

/// Returns the path of the installed SoftHSM2 module.
///
/// # Panics
/// Panics when no candidate exists, naming the set-up script that installs it.
pub fn softhsm_module_path() -> PathBuf {
    MODULE_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!(
                "SoftHSM2 module not found in any of {MODULE_CANDIDATES:?}; \
                 run scripts/setup.sh to install softhsm2"
            )
        })
}

/// A throwaway SoftHSM2 token directory and the configuration file that points at it.
///
/// SoftHSM reads `SOFTHSM2_CONF` once, at `C_Initialize`, and lists tokens only then. So a test
/// process creates every token it needs first, then calls [`SoftHsmLab::activate`], and only
/// then opens the module. cargo-nextest runs each test in its own process, which gives each test
/// its own lab.
#[derive(Debug)]
pub struct SoftHsmLab {
    dir: TempDir,
    conf: PathBuf,
}

/// A token created in a [`SoftHsmLab`], with the throwaway PINs it was initialized with.
#[derive(Debug, Clone)]
pub struct SoftHsmToken {
    pub label: String,
    pub user_pin: String,
    pub so_pin: String,
}

impl SoftHsmLab {
    /// Creates an empty token directory and its configuration file.
    pub fn new() -> Self {
        Self::with_conf_lines(&[])
    }

    /// Like [`SoftHsmLab::new`], with extra lines appended to `softhsm2.conf`.
    pub fn with_conf_lines(extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("keyfleet-softhsm-")
            .tempdir()
            .expect("create SoftHSM2 temporary directory");
        let tokens = dir.path().join("tokens");
        fs::create_dir(&tokens).expect("create SoftHSM2 token directory");

        let conf = dir.path().join("softhsm2.conf");
        let text = format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ) + &extra.join("\n")
            + "\n";
        fs::write(&conf, text).expect("write softhsm2.conf");

        Self { dir, conf }
    }

    /// Returns the configuration file to pass as `SOFTHSM2_CONF`.
    pub fn conf_path(&self) -> &Path {
        &self.conf
    }

    /// Returns the lab's root directory, where tests may keep PIN files and scratch data.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Initializes a new token with `softhsm2-util --init-token --free`.
    pub fn create_token(&self, label: &str, user_pin: &str) -> SoftHsmToken {
        let so_pin = format!("so-{user_pin}");
        let output = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &self.conf)
            .args(["--init-token", "--free", "--label", label])
            .args(["--so-pin", &so_pin, "--pin", user_pin])
            .output()
            .expect("run softhsm2-util (install it with scripts/setup.sh)");
        assert!(
            output.status.success(),
            "softhsm2-util --init-token --label {label} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );

        SoftHsmToken {
            label: label.to_owned(),
            user_pin: user_pin.to_owned(),
            so_pin,
        }
    }

    /// Imports a raw AES key into `token` with `softhsm2-util --import --aes`. The key is
    /// neither sensitive nor non-extractable, which makes it a known-answer fixture and a key
    /// that a strict policy must reject.
    pub fn import_aes_key(&self, token: &SoftHsmToken, label: &str, key: &[u8]) {
        let path = self.dir.path().join(format!("{label}.key"));
        fs::write(&path, key).expect("write AES key file");
        self.run_tool(
            "softhsm2-util",
            &[
                "--import",
                path.to_str().expect("UTF-8 path"),
                "--aes",
                "--token",
                &token.label,
                "--label",
                label,
                "--id",
                &hex(label.as_bytes()),
                "--pin",
                &token.user_pin,
            ],
        );
    }

    /// Runs `pkcs11-tool` from OpenSC against `token`, logged in with its user PIN.
    pub fn pkcs11_tool(&self, token: &SoftHsmToken, args: &[&str]) {
        let module = softhsm_module_path();
        let mut full = vec![
            "--module",
            module.to_str().expect("UTF-8 module path"),
            "--token-label",
            &token.label,
            "--login",
            "--pin",
            &token.user_pin,
        ];
        full.extend_from_slice(args);
        self.run_tool("pkcs11-tool", &full);
    }

    fn run_tool(&self, program: &str, args: &[&str]) {
        let output = Command::new(program)
            .env("SOFTHSM2_CONF", &self.conf)
            .args(args)
            .output()
            .unwrap_or_else(|error| {
                panic!("run {program} (install it with scripts/setup.sh): {error}")
            });
        assert!(
            output.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Writes `contents` to a file in the lab with owner-only permissions and returns its path.
    pub fn write_secret_file(&self, name: &str, contents: &str) -> PathBuf {
        use std::os::unix::fs::OpenOptionsExt;

        let path = self.dir.path().join(name);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .expect("create secret file");
        file.write_all(contents.as_bytes())
            .expect("write secret file");
        path
    }

    /// Points this process's `SOFTHSM2_CONF` at the lab.
    ///
    /// # Panics
    /// Panics when the process already activated a different lab: SoftHSM would keep reading
    /// the first one, and the test would silently use the wrong tokens.
    pub fn activate(&self) {
        self.activate_with_env(&[]);
    }

    /// Like [`SoftHsmLab::activate`], and sets the extra variables `env` as well, for example
    /// a PIN variable that a configuration names.
    pub fn activate_with_env(&self, env: &[(&str, &str)]) {
        static ACTIVE: OnceLock<PathBuf> = OnceLock::new();

        let active = ACTIVE.get_or_init(|| {
            let conf = self.conf.to_str().expect("UTF-8 temporary path");
            let mut all = vec![("SOFTHSM2_CONF", conf)];
            all.extend_from_slice(env);
            set_process_env(&all);
            self.conf.clone()
        });
        assert_eq!(
            active, &self.conf,
            "this process already activated another SoftHSM2 lab; run tests with cargo nextest"
        );
    }
}

impl Default for SoftHsmLab {
    fn default() -> Self {
        Self::new()
    }
}

#[allow(unsafe_code)]
fn set_process_env(pairs: &[(&str, &str)]) {
    for (name, value) in pairs {
        // SAFETY: `set_var` is unsound only while another thread reads the environment. Tests
        // call this once, at their start, before they load the PKCS#11 module or start a
        // runtime, and cargo-nextest runs one test per process, so no other thread of ours
        // reads the environment concurrently.
        unsafe { std::env::set_var(name, value) };
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
