//! A real OpenLDAP `slapd` of the test's own (Debian's package; .ci/run installs it): its config and
//! data in a temp dir, on a free loopback port, run as the current user, killed on drop. The data:
//! people (inetOrgPerson) below `ou=people`, groups (groupOfNames) below `ou=groups` with the memberOf
//! overlay keeping `memberOf` on people and groups, and one nested group. With `tls`, a test CA and
//! a server certificate made with the openssl CLI, for StartTLS.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// Self-contained (examples/directory_load.rs includes this file too).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub const SUFFIX: &str = "dc=plant,dc=test";
pub const ROOT_DN: &str = "cn=admin,dc=plant,dc=test";
pub const ROOT_PW: &str = "root-secret";
/// The service account the daemon binds as.
pub const SERVICE_DN: &str = "cn=gatewarden,ou=services,dc=plant,dc=test";
pub const SERVICE_PW: &str = "service-secret";
/// Every person's password.
pub const PERSON_PW: &str = "directory-pass-1";

pub const SUPERVISORS: &str = "cn=supervisors,ou=groups,dc=plant,dc=test";
pub const OPERATORS: &str = "cn=operators,ou=groups,dc=plant,dc=test";
/// Inside `OPERATORS`: its members are operators through nesting.
pub const NIGHT_SHIFT: &str = "cn=night-shift,ou=groups,dc=plant,dc=test";

pub struct Slapd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

fn sbin(name: &str) -> String {
    let p = format!("/usr/sbin/{name}");
    if Path::new(&p).exists() { p } else { name.to_string() }
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e} (.ci/run installs slapd, ldap-utils, openssl)"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The base entries, loaded with slapadd before the server starts.
fn base_ldif() -> String {
    format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: plant\no: Plant\n\n\
         dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n\n\
         dn: {SERVICE_DN}\nobjectClass: person\ncn: gatewarden\nsn: service\nuserPassword: {SERVICE_PW}\n\n"
    )
}

pub fn person_ldif(uid: &str) -> String {
    format!(
        "dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n\
         displayName: {uid} of the plant\nuserPassword: {PERSON_PW}\n\n"
    )
}

pub fn group_ldif(dn: &str, members: &[String]) -> String {
    let cn = dn.split(',').next().unwrap().trim_start_matches("cn=");
    let mut s = format!("dn: {dn}\nobjectClass: groupOfNames\ncn: {cn}\n");
    for m in members {
        s += &format!("member: {m}\n");
    }
    s + "\n"
}

pub fn person_dn(uid: &str) -> String {
    format!("uid={uid},ou=people,{SUFFIX}")
}

impl Slapd {
    /// The plant: alice (supervisors), bob (night-shift, inside operators), carol (no group), and the
    /// people of `extra` (no group).
    pub fn start(tls: bool) -> Slapd {
        Self::start_with(tls, &[])
    }

    pub fn start_with(tls: bool, extra: &[String]) -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("data")).unwrap();
        let mut tls_conf = String::new();
        if tls {
            make_certs(d);
            tls_conf = format!(
                "TLSCACertificateFile {0}/ca.pem\nTLSCertificateFile {0}/server.pem\nTLSCertificateKeyFile {0}/server.key\n",
                d.display()
            );
        }
        let conf = format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/nis.schema\ninclude /etc/ldap/schema/inetorgperson.schema\n\
             modulepath /usr/lib/ldap\nmoduleload back_mdb\nmoduleload memberof\n\
             pidfile {0}/slapd.pid\nargsfile {0}/slapd.args\n{tls_conf}\
             sizelimit 100000\n\
             database mdb\nmaxsize 1073741824\nsuffix \"{SUFFIX}\"\nrootdn \"{ROOT_DN}\"\nrootpw {ROOT_PW}\n\
             directory {0}/data\nindex objectClass eq\nindex uid eq\nindex member eq\n\
             overlay memberof\n",
            d.display()
        );
        std::fs::write(d.join("slapd.conf"), conf).unwrap();
        std::fs::write(d.join("base.ldif"), base_ldif()).unwrap();
        run(
            Command::new(sbin("slapadd"))
                .args(["-q", "-f"])
                .arg(d.join("slapd.conf"))
                .arg("-l")
                .arg(d.join("base.ldif")),
            "slapadd",
        );
        let mut s = Slapd { port: free_port(), dir, child: None };
        s.run();
        // People and groups go in through the server, so the memberOf overlay sees them (slapadd
        // bypasses overlays).
        let mut ldif = String::new();
        for uid in ["alice", "bob", "carol"] {
            ldif += &person_ldif(uid);
        }
        for uid in extra {
            ldif += &person_ldif(uid);
        }
        // groupOfNames needs a member: the service account keeps supervisors non-empty without alice.
        ldif += &group_ldif(SUPERVISORS, &[person_dn("alice"), SERVICE_DN.to_string()]);
        ldif += &group_ldif(NIGHT_SHIFT, &[person_dn("bob")]);
        ldif += &group_ldif(OPERATORS, &[NIGHT_SHIFT.to_string()]);
        s.ldap("ldapadd", &ldif);
        s
    }

    /// (Re)starts slapd with the same data. A free port found by binding port 0 may be taken by
    /// another test's server before ours binds it; ours then exits, and connecting would reach the other
    /// one. So it is ours only once its own pid file names it (slapd writes it after binding); if it
    /// exited, another port is tried.
    pub fn run(&mut self) {
        let d = self.dir.path().to_path_buf();
        for _ in 0..10 {
            let url = format!("ldap://127.0.0.1:{}/", self.port);
            let _ = std::fs::remove_file(d.join("slapd.pid"));
            let mut child = Command::new(sbin("slapd"))
                .args(["-d", "0", "-h", &url, "-f"])
                .arg(d.join("slapd.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("slapd is installed (.ci/run installs it)");
            let pid = child.id().to_string();
            let deadline = Instant::now() + Duration::from_secs(20);
            let up = loop {
                if child.try_wait().ok().flatten().is_some() {
                    break false;
                }
                let ours = std::fs::read_to_string(d.join("slapd.pid")).is_ok_and(|p| p.trim() == pid);
                if ours && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    break true;
                }
                assert!(Instant::now() < deadline, "slapd did not start on port {}", self.port);
                std::thread::sleep(Duration::from_millis(25));
            };
            if up {
                self.child = Some(child);
                return;
            }
            self.port = free_port();
        }
        panic!("slapd could not bind a free port");
    }

    /// Runs ldapadd / ldapmodify / ldapdelete as the root DN with `input` on stdin.
    pub fn ldap(&self, tool: &str, input: &str) {
        use std::io::Write;
        let mut child = Command::new(tool)
            .args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PW])
            .stdin(Stdio::piped())
            // Not read: a line per entry would fill the pipe and stop the tool while we write its input.
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool}: {e} (.ci/run installs ldap-utils)"));
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_string();
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(out.status.success(), "{tool}: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// Kills it (the directory gone).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // A stopped process must be continued to die of SIGKILL promptly on some kernels.
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGCONT);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The `[directory]` table for a daemon: the service account's password in a 0600 file.
    pub fn config(&self, extra: &str) -> String {
        let pw = self.dir.path().join("bind.secret");
        std::fs::write(&pw, format!("{SERVICE_PW}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        format!(
            "[directory]\nurl = \"{}\"\nbind_dn = \"{SERVICE_DN}\"\nbind_password_file = {:?}\n\
             user_base = \"ou=people,{SUFFIX}\"\nuser_filter = \"(&(objectClass=inetOrgPerson)(uid={{user}}))\"\n\
             group_attribute = \"memberOf\"\ntimeout = \"1s\"\n{extra}\
             [directory.group_roles]\n\"{SUPERVISORS}\" = [\"supervisor\"]\n\"{OPERATORS}\" = [\"operator\"]\n",
            self.url(),
            pw.display().to_string()
        )
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A self-signed CA in `d` (`ca.key`, `ca.pem`) named `cn`, made with the openssl CLI.
pub fn make_ca(d: &Path, cn: &str) {
    let subject = format!("/CN={cn}");
    let args =
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj"];
    run(Command::new("openssl").current_dir(d).args(args).arg(&subject), "openssl");
}

/// A CA and a server certificate for 127.0.0.1, made with the openssl CLI.
fn make_certs(d: &Path) {
    let ssl = |args: &[&str]| run(Command::new("openssl").current_dir(d).args(args), "openssl");
    make_ca(d, "gatewarden test CA");
    ssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(d.join("ext.cnf"), "subjectAltName = IP:127.0.0.1, DNS:localhost\n").unwrap();
    ssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}
