//! Every command of README.md's console blocks runs as written, in README order, against the
//! mock where a key is needed (`personafs mock-server`, itself run as README.md shows it).
//! Only what cannot run here is replaced, and only where the test says so: the home directory
//! is a temporary one, paths outside it that would change the machine (/usr/local,
//! /etc/bash_completion.d) point into it, the API key is the mock's, and the API address is
//! given through the environment (`PERSONAFS_API_BASE`, as the README says every option can
//! be). A command the README gains without a step here fails `every_readme_command_is_run`.
//! `mount.example.toml` is checked too (copied as shipped, it mounts the mock), and so are
//! the commands `personafs --help` shows.

mod binary;
mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use binary::{BIN, MockProcess};
use common::fuse_available;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// README commands not run here, and why.
const NOT_RUN: &[(&str, &str)] = &[
    ("scripts/test.sh", "it is the command that runs this test"),
    (
        "cargo install cargo-deb --locked",
        ".ci/run runs it before the tests",
    ),
    ("scripts/deb.sh", "tests/deb.rs runs it"),
    (
        "dpkg -i target/debian/personafs_*.deb",
        "tests/deb.rs installs the package it built",
    ),
    (
        "cp docs/systemd/personafs.service /etc/systemd/system/ && systemctl enable --now personafs",
        "needs systemd as PID 1 (tests/systemd.rs runs the units' command lines)",
    ),
    ("journalctl -u personafs", "needs systemd as PID 1"),
];

/// The commands of README.md's console blocks (`$ ` or `# ` lines), comments removed.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let mut out = Vec::new();
    let mut in_console = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_console = line == "```console";
            continue;
        }
        if let Some(cmd) = line
            .strip_prefix("$ ")
            .or_else(|| line.strip_prefix("# "))
            .filter(|_| in_console)
        {
            let cmd = cmd.split("  #").next().unwrap().trim_end();
            out.push(cmd.to_string());
        }
    }
    out
}

/// README's commands, each taken once by the step that runs it.
struct Readme {
    commands: Vec<String>,
    taken: RefCell<BTreeSet<String>>,
}

impl Readme {
    fn new() -> Readme {
        Readme {
            commands: readme_commands(),
            taken: RefCell::default(),
        }
    }

    /// The README's command `cmd` (which must be there, as written).
    fn cmd(&self, cmd: &str) -> String {
        assert!(
            self.commands.iter().any(|c| c == cmd),
            "README.md no longer shows `{cmd}`: update this test with it"
        );
        self.taken.borrow_mut().insert(cmd.to_string());
        cmd.to_string()
    }

    fn not_taken(&self) -> Vec<String> {
        let taken = self.taken.borrow();
        self.commands
            .iter()
            .filter(|c| !taken.contains(*c) && !NOT_RUN.iter().any(|(n, _)| n == c))
            .cloned()
            .collect()
    }
}

/// Where the steps run: a home of their own, `personafs` (this build) first on PATH.
struct Shell {
    work: PathBuf,
    env: Vec<(String, String)>,
}

impl Shell {
    /// Runs `script` with bash (from stdin: nothing of it is on a command line) in `dir`;
    /// its stdout, or a panic naming the step.
    fn run_in(&self, dir: &Path, script: &str) -> String {
        let mut child = Command::new("bash")
            .args(["-euo", "pipefail", "-s"])
            .current_dir(dir)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(
            out.status.success(),
            "`{script}` failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
        stdout
    }

    fn run(&self, script: &str) -> String {
        self.run_in(&self.work, script)
    }

    fn set(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }
}

/// Unmounts what the steps mounted, however the test ends; then the mock stops (on its drop).
struct Cleanup {
    mountpoints: Vec<PathBuf>,
    mock: Option<MockProcess>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for mp in &self.mountpoints {
            binary::unmount_if_mounted(mp);
        }
    }
}

/// `personafs mock-server --generate 50`, as README.md shows it.
fn start_mock(readme_line: &str) -> MockProcess {
    let args: Vec<&str> = readme_line.split(' ').skip(1).collect();
    assert_eq!(args, ["mock-server", "--generate", "50"]);
    MockProcess::spawn(BIN, &args[1..])
}

#[test]
fn every_readme_command_is_run() {
    let commands = readme_commands();
    assert!(commands.len() >= 20, "{commands:?}");
    for (cmd, why) in NOT_RUN {
        assert!(
            commands.iter().any(|c| c == cmd),
            "`{cmd}` ({why}) is not in README.md"
        );
    }
    // The steps of the big test, by name: each README command is run or said why not.
    let source = std::fs::read_to_string(Path::new(ROOT).join("tests/readme_commands.rs")).unwrap();
    for cmd in &commands {
        let quoted = format!("{cmd:?}");
        assert!(
            source.contains(&quoted) || NOT_RUN.iter().any(|(n, _)| n == cmd),
            "README.md's `{cmd}` is neither run by tests/readme_commands.rs nor in NOT_RUN"
        );
    }
}

#[test]
fn readme_commands_run_as_written() {
    if !fuse_available() || nix::unistd::geteuid().as_raw() != 0 {
        eprintln!("skipped: needs FUSE and root (the README's commands are shown as root)");
        return;
    }
    let readme = Readme::new();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().canonicalize().unwrap();
    let (home, work, bin) = (t.join("home"), t.join("work"), t.join("bin"));
    for d in [&home, &work, &bin] {
        std::fs::create_dir(d).unwrap();
    }
    std::os::unix::fs::symlink(BIN, bin.join("personafs")).unwrap();
    let mut sh = Shell {
        work: work.clone(),
        env: vec![
            ("HOME".into(), home.display().to_string()),
            (
                "PATH".into(),
                format!(
                    "{}:{}",
                    bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            ),
        ],
    };
    // cargo and rustup keep their homes (the registry, the toolchain) whatever HOME says.
    let real_home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    for (var, default) in [("CARGO_HOME", ".cargo"), ("RUSTUP_HOME", ".rustup")] {
        let value = std::env::var_os(var).unwrap_or_else(|| real_home.join(default).into());
        sh.set(var, value.to_str().unwrap());
    }
    if let Ok(v) = std::env::var("RUSTUP_TOOLCHAIN") {
        sh.set("RUSTUP_TOOLCHAIN", &v);
    }
    let demo = PathBuf::from("/tmp/personafs-demo");
    let persona = home.join("persona");
    let mut cleanup = Cleanup {
        mountpoints: vec![demo.clone(), persona.clone()],
        mock: None,
    };
    let root = Path::new(ROOT);

    // Try it: the demo, and what the README shows of it. The README's `target/` is cargo's
    // default; where the run has a target directory of its own (an absolute
    // CARGO_TARGET_DIR), the demo builds there too, reusing the run's release build instead
    // of making a second one, and the commands and output name that directory instead.
    let own_target = std::env::var("CARGO_TARGET_DIR")
        .ok()
        .filter(|t| Path::new(t).is_absolute());
    if let Some(t) = &own_target {
        sh.set("CARGO_TARGET_DIR", t);
    }
    let release = |text: &str| match &own_target {
        Some(t) => text.replace("target/release/", &format!("{t}/release/")),
        None => text.to_string(),
    };
    let cmd = "scripts/demo.sh                 # build, then mount a generated organization at /tmp/personafs-demo";
    let out = sh.run_in(root, &readme.cmd("scripts/demo.sh"));
    assert_eq!(
        out,
        release(&readme_output(cmd)),
        "README.md's output of scripts/demo.sh"
    );
    // What the README shows them print is what they print.
    for cmd in [
        "ls -l /tmp/personafs-demo/inquiries | head -3",
        "ls -lR /tmp/personafs-demo/inquiries/inq_112jKfZVjJtHGuAe621pM1Qj",
        "target/release/personafs unmount /tmp/personafs-demo",
    ] {
        let out = sh.run_in(root, &release(&readme.cmd(cmd)));
        assert_eq!(
            out,
            release(&readme_output(cmd)),
            "README.md's output of `{cmd}`"
        );
    }

    // Install from the checkout, into a root of the test's own (the release build is reused).
    let install_root = t.join("usr-local");
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{ROOT}/target"));
    sh.set("CARGO_TARGET_DIR", &target);
    sh.run_in(
        root,
        &readme
            .cmd("cargo install --path . --locked --root /usr/local")
            .replace("/usr/local", install_root.to_str().unwrap()),
    );
    let installed = install_root.join("bin/personafs");
    let version = sh.run(&format!("{} --version", installed.display()));
    assert!(version.starts_with("personafs "), "{version}");
    sh.run(
        &readme
            .cmd("apt-get install fuse3")
            .replace("install", "install -y -qq"),
    );

    // Real use, over the mock.
    let mock = start_mock(
        &readme_inline("personafs mock-server --generate 50").expect("README shows the mock"),
    );
    let (api, files) = (mock.api.clone(), mock.files.clone());
    cleanup.mock = Some(mock);
    sh.set("PERSONAFS_API_BASE", &api);
    sh.set("PERSONAFS_FILE_HOST", &common::host_port(&files));
    let export = readme.cmd("export PERSONA_API_KEY=persona_production_…");
    sh.run(&export.replace("persona_production_…", "persona_sandbox_demo"));
    sh.set("PERSONA_API_KEY", "persona_sandbox_demo");
    sh.run(&readme.cmd("mkdir -p ~/persona"));
    sh.run(
        &readme
            .cmd("personafs mount ~/persona --status approved,declined --created-after 2026-01-01"),
    );
    let first = sh.run("ls ~/persona/inquiries | head -1");
    let first = first.trim();
    assert!(first.starts_with("inq_"), "{first:?}");
    sh.run(
        &readme
            .cmd("cp -r ~/persona/inquiries/inq_2T4sQ… ./case-1234/")
            .replace("inq_2T4sQ…", first),
    );
    assert!(work.join("case-1234/inquiry.json").is_file());
    let rsync = readme.cmd("rsync -a ~/persona/inquiries/ ./persona-archive/");
    sh.run(&rsync);
    let again = sh.run(&rsync.replace("rsync -a", "rsync -a --itemize-changes"));
    assert!(
        again.lines().all(|l| l.starts_with('.')),
        "a second run copies nothing:\n{again}"
    );
    sh.run(&readme.cmd("personafs unmount ~/persona"));
    assert!(!binary::is_mounted(&persona));

    // What a mount is doing: metrics and the audit log, given the README's way (environment).
    sh.set("PERSONAFS_METRICS_LISTEN", "9100");
    sh.run(&readme.cmd("personafs mount ~/persona --audit-log ~/persona-audit.log"));
    sh.run("cat \"$(ls -d ~/persona/inquiries/*/document/* | head -1)\" >/dev/null");
    let status = sh.run(&readme.cmd("personafs status"));
    assert!(status.contains(persona.to_str().unwrap()), "{status}");
    // The command in that line's comment.
    let json = sh.run("personafs status ~/persona --json");
    assert!(json.contains("\"api_calls\""), "{json}");
    let metrics = sh.run(&readme.cmd("curl -s localhost:9100/metrics | grep retrieve"));
    assert!(
        metrics.contains("personafs_api_calls_total{kind=\"retrieve\"}"),
        "{metrics}"
    );
    let audit = sh.run(&readme.cmd("tail -1 ~/persona-audit.log"));
    assert!(audit.contains("\"result\":\"ok\""), "{audit}");
    sh.run("personafs unmount ~/persona");
    sh.env.retain(|(k, _)| k != "PERSONAFS_METRICS_LISTEN");

    // The mount.example.toml as shipped (its header's command), with the key file beside it.
    let config = home.join("mount.toml");
    std::fs::copy(root.join("mount.example.toml"), &config).unwrap();
    sh.run("chmod 600 ~/mount.toml");
    sh.run("personafs mount ~/persona --config ~/mount.toml");
    assert!(home.join("persona/inquiries").is_dir());
    sh.run("personafs unmount ~/persona");

    // The README's inline mount of the mock.
    let inline = readme_inline("PERSONA_API_KEY=persona_sandbox_demo personafs mount MP --api-base <api> --file-host 127.0.0.1:<files port>")
        .expect("README shows how to mount the mock");
    let files_port = files.rsplit(':').next().unwrap().to_string();
    sh.run("mkdir -p MP");
    sh.run(
        &inline
            .replace("<api>", &api)
            .replace("<files port>", &files_port),
    );
    assert!(work.join("MP/inquiries").is_dir());
    cleanup.mountpoints.push(work.join("MP"));
    sh.run("personafs unmount MP");

    // Completions and the man page, into files of the test's own.
    let completions = readme.cmd("personafs completions bash > /etc/bash_completion.d/personafs");
    for shell in ["bash", "zsh", "fish"] {
        let out = t.join(format!("completion.{shell}"));
        sh.run(
            &completions
                .replace("/etc/bash_completion.d/personafs", out.to_str().unwrap())
                .replace("completions bash", &format!("completions {shell}")),
        );
        assert!(std::fs::read_to_string(&out).unwrap().contains("personafs"));
    }
    let man = t.join("personafs.1");
    sh.run(
        &readme
            .cmd("personafs man > /usr/local/share/man/man1/personafs.1")
            .replace(
                "/usr/local/share/man/man1/personafs.1",
                man.to_str().unwrap(),
            ),
    );
    assert!(std::fs::read_to_string(&man).unwrap().contains(".TH"));

    // The commands `personafs --help` shows ("…: personafs …"), /etc replaced.
    let help = sh.run("personafs --help");
    let shown: Vec<&str> = help
        .lines()
        .filter(|l| !l.starts_with("Usage:"))
        .filter_map(|l| l.split_once(": personafs ").map(|(_, c)| c))
        .collect();
    assert_eq!(shown.len(), 2, "{help}");
    std::fs::create_dir_all(work.join("etc/bash_completion.d")).unwrap();
    for cmd in shown {
        let cmd = format!("personafs {cmd}").replace("/etc/", "./etc/");
        sh.run(&cmd);
        let file = cmd.rsplit(' ').next().unwrap();
        assert!(work.join(file).metadata().unwrap().len() > 1000, "{cmd}");
    }

    // Cache commands, on the cache the mounts above used (~/.cache/personafs).
    let stats = sh.run(&readme.cmd("personafs cache stats"));
    assert!(!stats.is_empty());
    sh.run(&readme.cmd("personafs cache prune"));
    sh.run(&readme.cmd("personafs cache clear"));

    let left = readme.not_taken();
    assert!(
        left.is_empty(),
        "README commands this test did not run: {left:?}"
    );
    drop(cleanup);
}

/// The lines README.md shows after `$ cmd`, up to the next command or the block's end.
fn readme_output(cmd: &str) -> String {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let mut lines = readme.lines().skip_while(|l| *l != format!("$ {cmd}"));
    assert!(lines.next().is_some(), "README.md shows no `$ {cmd}`");
    lines
        .take_while(|l| !l.starts_with("$ ") && !l.starts_with("```"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .trim_end()
        .to_string()
        + "\n"
}

/// An inline command of README.md (between backticks), if the README shows it as written.
fn readme_inline(cmd: &str) -> Option<String> {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    // Inline code may be wrapped over two lines.
    let flat = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    flat.contains(&format!("`{cmd}`")).then(|| cmd.to_string())
}
