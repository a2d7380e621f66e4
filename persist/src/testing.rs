//! A throwaway Postgres cluster for tests: `initdb` into a temporary
//! directory, `pg_ctl` on a free loopback port, stopped and removed when
//! dropped. The server binaries come from `TRADEBRIDGE_PG_BIN`, else the
//! newest `/usr/lib/postgresql/<version>/bin` (Debian's layout).
//!
//! # Invariants
//! - Run as root (CI), every server command runs as the `postgres` user
//!   (`runuser`), which owns the directory: Postgres refuses to run as root.
//! - Nothing outside the temporary directory is touched; the cluster listens
//!   on 127.0.0.1 only, with trust authentication for the `postgres` role.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::Context as _;

/// How long `pg_ctl` waits for the server to start or stop.
const PG_CTL_WAIT_SECONDS: &str = "60";

/// A running throwaway cluster.
pub struct TestCluster {
    /// The data directory (and the Unix socket directory), removed on drop.
    directory: PathBuf,
    /// Where initdb, pg_ctl and postgres live.
    bin: PathBuf,
    /// Loopback port the server listens on.
    port: u16,
    /// Run server commands through `runuser -u postgres` (we are root).
    as_postgres_user: bool,
}

impl TestCluster {
    /// Creates and starts a cluster. `durable` keeps fsync on (benchmarks);
    /// tests turn it off, since they never crash the machine.
    pub fn start(durable: bool) -> anyhow::Result<TestCluster> {
        TestCluster::start_in(durable, &std::env::temp_dir(), "")
    }

    /// [`TestCluster::start`] with the cluster's directory made under
    /// `parent` (another filesystem or device than the temporary one) and
    /// `settings` (lines of `postgresql.conf`) appended to the server's
    /// configuration after the cluster's own.
    pub fn start_in(durable: bool, parent: &Path, settings: &str) -> anyhow::Result<TestCluster> {
        let extra = settings;
        let bin = server_binaries()?;
        // SAFETY: geteuid has no preconditions.
        let as_postgres_user = unsafe { libc::geteuid() } == 0;
        let directory = parent.join(format!("tradebridge-pg-{}-{}", std::process::id(), unique_suffix()));
        std::fs::create_dir_all(&directory).with_context(|| format!("create {}", directory.display()))?;
        if as_postgres_user {
            run(Command::new("chown").arg("postgres:postgres").arg(&directory))?;
        }
        let mut cluster = TestCluster { directory, bin, port: 0, as_postgres_user };
        let data = cluster.data_directory();
        cluster.server_command("initdb", &["-D", &data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])?;
        let mut settings = format!(
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nmax_connections = 50\n",
            cluster.directory.display()
        );
        if !durable {
            settings.push_str("fsync = off\nfull_page_writes = off\nsynchronous_commit = off\n");
        }
        if !extra.is_empty() {
            settings.push('\n');
            settings.push_str(extra);
            settings.push('\n');
        }
        append(&Path::new(&data).join("postgresql.conf"), &settings)?;
        // A port is free when we look; another process may take it before
        // the server binds it, so a failed start tries another one.
        let mut last_error = None;
        for _ in 0..3 {
            cluster.port = free_port()?;
            match cluster.start_server() {
                Ok(()) => return Ok(cluster),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.expect("three attempts ran"))
    }

    /// `postgres://postgres@127.0.0.1:PORT/database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates `database` (through the `postgres` database).
    pub fn create_database(&self, database: &str) -> anyhow::Result<()> {
        self.psql("postgres", &format!("CREATE DATABASE \"{database}\""))?;
        Ok(())
    }

    /// Runs `sql` with psql against `database`; its standard output, unaligned.
    pub fn psql(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        let output = run(Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(self.port.to_string())
            .args(["-d", database, "-c", sql]))?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Stops the server (fast shutdown), as an operator or a crash of the
    /// database host would make it go away; [`TestCluster::restart`] brings it back.
    pub fn stop(&self) -> anyhow::Result<()> {
        let data = self.data_directory();
        self.server_command("pg_ctl", &["-D", &data, "-m", "fast", "-w", "-t", PG_CTL_WAIT_SECONDS, "stop"])?;
        Ok(())
    }

    /// Starts the stopped server again on the same port.
    pub fn restart(&self) -> anyhow::Result<()> {
        self.start_server()
    }

    fn data_directory(&self) -> String {
        self.directory.join("data").display().to_string()
    }

    fn start_server(&self) -> anyhow::Result<()> {
        let data = self.data_directory();
        let log = self.directory.join("server.log").display().to_string();
        let options = format!("-c port={}", self.port);
        self.server_command("pg_ctl", &["-D", &data, "-l", &log, "-o", &options, "-w", "-t", PG_CTL_WAIT_SECONDS, "start"])
            .with_context(|| format!("server log:\n{}", std::fs::read_to_string(&log).unwrap_or_default()))?;
        Ok(())
    }

    /// Runs one of the server binaries, as `postgres` when we are root.
    fn server_command(&self, program: &str, arguments: &[&str]) -> anyhow::Result<Output> {
        let binary = self.bin.join(program);
        let mut command = if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&binary);
            command
        } else {
            Command::new(&binary)
        };
        command.args(arguments).current_dir(&self.directory);
        run(&mut command)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let data = self.data_directory();
        let _ = self.server_command("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "-t", PG_CTL_WAIT_SECONDS, "stop"]);
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// `TRADEBRIDGE_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`.
fn server_binaries() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("TRADEBRIDGE_PG_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .with_context(|| format!("no PostgreSQL server under {} (install postgresql, or set TRADEBRIDGE_PG_BIN)", root.display()))?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).with_context(|| format!("no initdb under {}/<version>/bin", root.display()))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A suffix that differs between clusters of one process.
fn unique_suffix() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).with_context(|| format!("open {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// Runs `command`; an error carries its status and both outputs.
fn run(command: &mut Command) -> anyhow::Result<Output> {
    let output = command.output().with_context(|| format!("run {command:?}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{command:?} failed with {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output)
}
