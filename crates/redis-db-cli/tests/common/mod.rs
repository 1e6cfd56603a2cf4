//! Running the built `redis-db` binary as a user would: its own process, a clean environment,
//! config files in a scratch directory.

#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The binary under test, built by cargo for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_redis-db");

/// Variables the binary reads; a developer's shell may have any of them set.
const VARIABLES: [&str; 7] = [
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_USERNAME",
    "REDIS_PASSWORD",
    "REDIS_DB_CONFIG",
    "NO_COLOR",
];

/// What one run printed and returned.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Both streams, for assertions about what is never shown.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// `redis-db ARGS` with none of the variables above set, in `cwd`.
pub fn command(cwd: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).current_dir(cwd);
    for name in VARIABLES {
        command.env_remove(name);
    }
    command
}

/// Runs to the end.
pub fn run(command: &mut Command) -> Run {
    let output = command.output().expect("the redis-db binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `redis-db ARGS` in `cwd`, run to the end.
pub fn redis_db(cwd: &Path, args: &[&str]) -> Run {
    run(&mut command(cwd, args))
}

/// The repository root (where `tests/ui` and `config/` live).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// A directory of its own per test, removed on drop.
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    pub fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "redis-db-cli-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `text` to `name` (sub-directories created) and returns its path as a string.
    pub fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("scratch sub-directory");
        }
        std::fs::write(&path, text).expect("scratch file");
        path.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Four databases (one an alias) on `127.0.0.1:port`, with quick timeouts so that a test of a
/// stopped server does not wait for the defaults.
pub fn config_yaml(port: u16) -> String {
    format!(
        "redis_databases:
  main:
    db: 0
  cache:
    db: 5
  workflows:
    db: 7
  monitoring:
    db: 7
    alias_of: workflows
host: 127.0.0.1
port: {port}
timeout: 2
connect_timeout: 2
"
    )
}

/// Parses a JSON document printed by the binary.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}
