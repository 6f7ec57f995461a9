//! systemd's readiness protocol: a foreground mount with `NOTIFY_SOCKET` set sends `READY=1`
//! once the mountpoint is served and `STOPPING=1` when unmounting begins. The test plays
//! systemd: it binds the datagram socket (a path, or an abstract `@name`), starts the mount as
//! a service would, and reads what arrives.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use confluencefs::confluence::Flavor;

use crate::mounted::{is_mounted, unmount};
use crate::support::{Server, TOKEN, USER};

/// A foreground mount process; dropping it unmounts, then kills it if it is still there.
struct Service {
    child: Child,
    mountpoint: PathBuf,
}

impl Service {
    fn start(server: &Server, mountpoint: &Path, cache: &Path, notify_socket: &str) -> Service {
        let child = Command::new(env!("CARGO_BIN_EXE_confluencefs"))
            .arg("mount")
            .arg(server.base_url())
            .arg(mountpoint)
            .arg("--cache-dir")
            .arg(cache)
            .arg("--foreground")
            .env("CONFLUENCE_USER", USER)
            .env("CONFLUENCE_TOKEN", TOKEN)
            .env("NOTIFY_SOCKET", notify_socket)
            .env_remove("CONFLUENCE_URL")
            .env_remove("CONFLUENCEFS_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("confluencefs runs");
        Service {
            child,
            mountpoint: mountpoint.to_path_buf(),
        }
    }

    /// Waits (at most 20 s) for the process to end; its exit status.
    fn wait(&mut self) -> Option<std::process::ExitStatus> {
        for _ in 0..1000 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        unmount(&self.mountpoint);
        if self.wait().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The next datagram, as text (the socket has a read timeout).
fn receive(socket: &UnixDatagram) -> String {
    let mut buffer = [0u8; 4096];
    let n = socket
        .recv(&mut buffer)
        .expect("a notification before the timeout");
    String::from_utf8_lossy(&buffer[..n]).into_owned()
}

fn lines(message: &str) -> Vec<&str> {
    message.lines().collect()
}

#[test]
fn ready_once_mounted_and_stopping_before_the_drain_on_sigterm() {
    let server = Server::start(Flavor::Cloud);
    let dir = tempfile::tempdir().unwrap();
    let mountpoint = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut service = Service::start(
        &server,
        mountpoint.path(),
        dir.path(),
        path.to_str().unwrap(),
    );
    let ready = receive(&socket);
    assert_eq!(lines(&ready)[0], "READY=1", "{ready}");
    assert!(
        ready.contains("STATUS=Serving ") && ready.contains(&server.base_url()),
        "{ready}"
    );
    // READY means served: no waiting, no retry.
    assert!(is_mounted(mountpoint.path()), "READY=1 before the mount");
    assert!(mountpoint.path().join("DOCS").is_dir());

    // SAFETY: kill(2) of the child this test started.
    unsafe {
        libc::kill(service.child.id() as i32, libc::SIGTERM);
    }
    let stopping = receive(&socket);
    assert_eq!(lines(&stopping)[0], "STOPPING=1", "{stopping}");
    let status = service.wait().expect("the service ends after SIGTERM");
    assert!(status.success(), "{status}");
    assert!(!is_mounted(mountpoint.path()));
    // The last word is how many uploads were left.
    let last = receive(&socket);
    assert!(last.contains("0 upload(s) left"), "{last}");
}

#[test]
fn an_abstract_socket_hears_ready_and_an_external_umount_stopping() {
    use std::os::linux::net::SocketAddrExt;
    let server = Server::start(Flavor::DataCenter);
    let dir = tempfile::tempdir().unwrap();
    let mountpoint = tempfile::tempdir().unwrap();
    let name = format!("confluencefs-test-{}-{:?}", std::process::id(), dir.path());
    let address = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&address).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut service = Service::start(&server, mountpoint.path(), dir.path(), &format!("@{name}"));
    assert_eq!(lines(&receive(&socket))[0], "READY=1");
    assert!(is_mounted(mountpoint.path()));
    unmount(mountpoint.path());
    assert_eq!(lines(&receive(&socket))[0], "STOPPING=1");
    assert!(service.wait().is_some_and(|s| s.success()));
}
