//! Throwaway Redis servers and clusters on loopback ports, for test suites.
//!
//! Enabled by the `test-support` feature. Each server is a `redis-server`
//! child of the test process, bound to 127.0.0.1 on a free port, without
//! persistence, in its own temporary directory. Dropping the handle kills
//! that child by its process id and removes the directory, so a failing test
//! leaves nothing running. Tests that need to stop and start Redis, or a
//! cluster, use these instead of the shared server on port 6379.

use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a fresh server or cluster may take to answer.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// How often readiness is polled.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// One `redis-server` process on a loopback port.
#[derive(Debug)]
pub struct LocalRedis {
    port: u16,
    cluster_port: Option<u16>,
    /// The port that speaks TLS, besides the plain one.
    tls_port: Option<u16>,
    dir: TempDir,
    process: Option<Child>,
}

impl LocalRedis {
    /// Starts a standalone server on a free port and waits until it answers.
    ///
    /// # Errors
    ///
    /// When `redis-server` is not installed, exits early, or does not answer
    /// in time.
    pub fn start() -> io::Result<Self> {
        let [port] = free_ports()?;
        Self::start_on(port, None)
    }

    /// Starts a standalone server that also speaks TLS on a second port,
    /// with a certificate for 127.0.0.1 signed by a certificate authority
    /// made for it alone (see [`LocalRedis::ca_file`]). Clients need not
    /// present a certificate of their own.
    ///
    /// # Errors
    ///
    /// As [`LocalRedis::start`], and when `openssl` is not installed or
    /// `redis-server` was built without TLS.
    pub fn start_tls() -> io::Result<Self> {
        let [port, tls_port] = free_ports()?;
        let mut server = Self {
            port,
            cluster_port: None,
            tls_port: Some(tls_port),
            dir: tempfile::tempdir()?,
            process: None,
        };
        make_certificates(server.dir.path())?;
        server.start_again()?;
        Ok(server)
    }

    fn start_on(port: u16, cluster_port: Option<u16>) -> io::Result<Self> {
        let mut server = Self {
            port,
            cluster_port,
            tls_port: None,
            dir: tempfile::tempdir()?,
            process: None,
        };
        server.start_again()?;
        Ok(server)
    }

    /// The `rediss://` URL of the TLS port, for a server from
    /// [`LocalRedis::start_tls`].
    pub fn tls_url(&self) -> Option<String> {
        self.tls_port
            .map(|port| format!("rediss://127.0.0.1:{port}"))
    }

    /// The certificate authority that signed a TLS server's certificate,
    /// as a PEM file: what a client must trust to connect.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The URL to connect to.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server at once, as a crash would; its data is gone.
    ///
    /// # Errors
    ///
    /// When the process cannot be killed or reaped.
    pub fn stop(&mut self) -> io::Result<()> {
        if let Some(mut process) = self.process.take() {
            process.kill()?;
            process.wait()?;
        }
        Ok(())
    }

    /// Starts the server again on the same port, empty, and waits until it
    /// answers.
    ///
    /// # Errors
    ///
    /// As [`LocalRedis::start`].
    pub fn start_again(&mut self) -> io::Result<()> {
        self.stop()?;
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path());
        if let Some(tls_port) = self.tls_port {
            let file = |name: &str| self.dir.path().join(name);
            command
                .args(["--tls-port", &tls_port.to_string()])
                .arg("--tls-cert-file")
                .arg(file("server.crt"))
                .arg("--tls-key-file")
                .arg(file("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(file("ca.crt"))
                .args(["--tls-auth-clients", "no"]);
        }
        if let Some(cluster_port) = self.cluster_port {
            command
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ])
                .args(["--cluster-port", &cluster_port.to_string()])
                .args(["--cluster-node-timeout", "2000"]);
        }
        let process = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.process = Some(process);
        self.wait_until_ready()
    }

    fn wait_until_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if self.answers("PING").is_ok() {
                return Ok(());
            }
            if let Some(status) = self.exit_status()? {
                self.process = None;
                return Err(io::Error::other(format!(
                    "redis-server on port {} exited with {status}",
                    self.port
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "redis-server on port {} did not answer in time",
                    self.port
                )));
            }
            thread::sleep(POLL_EVERY);
        }
    }

    fn exit_status(&mut self) -> io::Result<Option<ExitStatus>> {
        match self.process.as_mut() {
            Some(process) => process.try_wait(),
            None => Ok(None),
        }
    }

    /// Freezes the server with `SIGSTOP`: connections stay open but nothing
    /// is answered, as with a hung host.
    ///
    /// # Errors
    ///
    /// When the server is not running or the signal cannot be sent.
    pub fn freeze(&self) -> io::Result<()> {
        self.signal("-STOP")
    }

    /// Lets a frozen server run again.
    ///
    /// # Errors
    ///
    /// As [`LocalRedis::freeze`].
    pub fn thaw(&self) -> io::Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> io::Result<()> {
        let process = self
            .process
            .as_ref()
            .ok_or_else(|| io::Error::other("the server is not running"))?;
        let status = Command::new("kill")
            .args([signal, &process.id().to_string()])
            .status()?;
        if status.success() {
            return Ok(());
        }
        Err(io::Error::other(format!("kill {signal} failed: {status}")))
    }

    /// Sends one command, given as words, and returns the reply as text.
    fn answers(&self, command: &str) -> redis::RedisResult<String> {
        let client = redis::Client::open(self.url())?;
        let mut connection = client.get_connection_with_timeout(Duration::from_secs(1))?;
        let mut words = command.split_whitespace();
        let mut cmd = redis::cmd(words.next().unwrap_or("PING"));
        for word in words {
            cmd.arg(word);
        }
        cmd.query(&mut connection)
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        // Nothing to report to in a destructor; a child that is already gone
        // is the only way this fails.
        let _ = self.stop();
    }
}

/// A Redis Cluster of masters without replicas, each a [`LocalRedis`].
#[derive(Debug)]
pub struct LocalRedisCluster {
    nodes: Vec<LocalRedis>,
}

impl LocalRedisCluster {
    /// Starts `masters` cluster-enabled servers (at least 3, as Redis
    /// requires), joins them with `redis-cli --cluster create`, and waits
    /// until every node reports the cluster as ok.
    ///
    /// # Errors
    ///
    /// When a server does not start, `redis-cli` fails, or the cluster does
    /// not settle in time.
    pub fn start(masters: usize) -> io::Result<Self> {
        let ports = free_port_list(masters * 2)?;
        let (client_ports, bus_ports) = ports.split_at(masters);
        let nodes = client_ports
            .iter()
            .zip(bus_ports)
            .map(|(&port, &bus)| LocalRedis::start_on(port, Some(bus)))
            .collect::<io::Result<Vec<_>>>()?;
        let cluster = Self { nodes };

        cluster.create()?;
        cluster.wait_until_ok()?;
        Ok(cluster)
    }

    /// The nodes' URLs, comma-separated, as `ONCEPAY_REDIS_URL` takes them.
    pub fn url_list(&self) -> String {
        let urls: Vec<String> = self.nodes.iter().map(LocalRedis::url).collect();
        urls.join(",")
    }

    /// The nodes, to stop or restart one of them.
    pub fn nodes_mut(&mut self) -> &mut [LocalRedis] {
        &mut self.nodes
    }

    fn create(&self) -> io::Result<()> {
        let addresses: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]).args(&addresses).args([
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ]);
        succeeded(&mut create, "redis-cli --cluster create")
    }

    fn wait_until_ok(&self) -> io::Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            let all_ok = self.nodes.iter().all(|node| {
                node.answers("CLUSTER INFO")
                    .is_ok_and(|info| info.contains("cluster_state:ok"))
            });
            if all_ok {
                return Ok(());
            }
            thread::sleep(POLL_EVERY);
        }
        Err(io::Error::other("the Redis Cluster did not settle in time"))
    }
}

/// Writes into `dir` a certificate authority (`ca.crt`) and a certificate
/// for 127.0.0.1 signed by it (`server.crt`, `server.key`), valid for a day.
fn make_certificates(dir: &Path) -> io::Result<()> {
    std::fs::write(dir.join("san.ext"), "subjectAltName = IP:127.0.0.1\n")?;
    let steps = [
        "req -x509 -days 1 -subj /CN=oncepay-test-ca -newkey ec \
         -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt",
        "req -subj /CN=127.0.0.1 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
         -keyout server.key -out server.csr",
        "x509 -req -days 1 -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
         -extfile san.ext -out server.crt",
    ];
    for step in steps {
        let mut openssl = Command::new("openssl");
        openssl.current_dir(dir).args(step.split_whitespace());
        succeeded(&mut openssl, "openssl")?;
    }
    Ok(())
}

/// Runs `command` to its end; its output becomes the error when it fails.
fn succeeded(command: &mut Command, what: &str) -> io::Result<()> {
    let output = command.stdin(Stdio::null()).output()?;
    if output.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )))
}

/// `N` ports that were free a moment ago. All are held at once while they
/// are picked, so they differ from each other.
fn free_ports<const N: usize>() -> io::Result<[u16; N]> {
    let list = free_port_list(N)?;
    list.try_into()
        .map_err(|_| io::Error::other("picked the wrong number of ports"))
}

fn free_port_list(count: usize) -> io::Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|listener| listener.local_addr().map(|address| address.port()))
        .collect()
}
