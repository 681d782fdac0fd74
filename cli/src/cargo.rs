//! Asking cargo about the user's workspace.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The cargo that started us (`CARGO`), or the one on `PATH`.
pub fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Whether `cargo <name>` is installed.
pub fn has_subcommand(name: &str) -> bool {
    Command::new(cargo())
        .args([name, "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What this tool needs of `cargo metadata`.
pub struct Metadata {
    pub workspace_root: PathBuf,
    pub target_directory: PathBuf,
    /// The workspace's build targets that hold tests.
    pub targets: Vec<Target>,
}

/// A build target, named as nextest names its test binary.
pub struct Target {
    /// `pkg` for a library, `pkg::name` for an integration test, `pkg::bin/name`,
    /// `pkg::example/name` or `pkg::bench/name` for the others.
    pub binary_id: String,
    pub src_path: PathBuf,
}

/// `cargo metadata --no-deps` of the workspace.
pub fn metadata(manifest: Option<&Path>) -> Result<Metadata, String> {
    let mut command = Command::new(cargo());
    command.args(["metadata", "--no-deps", "--format-version", "1"]);
    if let Some(path) = manifest {
        command.arg("--manifest-path").arg(path);
    }
    let out = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err("cargo metadata failed (see above); is this a Cargo workspace?".to_owned());
    }
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata's output: {e}"))?;
    let path = |key: &str| {
        json[key]
            .as_str()
            .map(PathBuf::from)
            .ok_or_else(|| format!("cargo metadata: no {key}"))
    };
    let mut targets = Vec::new();
    let members: Vec<&str> = json["workspace_members"]
        .as_array()
        .map(|m| m.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    for package in json["packages"].as_array().into_iter().flatten() {
        if !members.contains(&package["id"].as_str().unwrap_or_default()) {
            continue;
        }
        let pkg = package["name"].as_str().unwrap_or_default();
        for target in package["targets"].as_array().into_iter().flatten() {
            let name = target["name"].as_str().unwrap_or_default();
            let kind = target["kind"][0].as_str().unwrap_or_default();
            let binary_id = match kind {
                "lib" | "rlib" | "proc-macro" | "cdylib" | "dylib" | "staticlib" => pkg.to_owned(),
                "test" => format!("{pkg}::{name}"),
                "bin" | "example" | "bench" => format!("{pkg}::{kind}/{name}"),
                _ => continue, // build scripts
            };
            if let Some(src) = target["src_path"].as_str() {
                targets.push(Target {
                    binary_id,
                    src_path: PathBuf::from(src),
                });
            }
        }
    }
    Ok(Metadata {
        workspace_root: path("workspace_root")?,
        target_directory: path("target_directory")?,
        targets,
    })
}
