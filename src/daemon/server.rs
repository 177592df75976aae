//! The control socket: a Unix stream socket speaking newline-delimited JSON.
//!
//! Each line is one request, each reply one line. A line longer than `daemon.max_request_bytes` gets
//! `bad_request` and the connection is closed (it cannot be resynchronised safely). A client that
//! sends nothing for `daemon.client_timeout`, or dribbles a line slower than that, is disconnected.
//! At most `daemon.max_clients` connections are served at once; the next is told so and closed.
//! Who the caller is comes from SO_PEERCRED, never from anything the client says about itself.

use crate::api::{self, Ctx, Origin};
use crate::protocol::{ApiError, ErrorCode, Request, Response};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use serde_json::Value;
use std::io;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another gatewarden is already serving {0}")]
    InUse(String),
    #[error("cannot bind control socket {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("control socket group {0:?} does not exist")]
    NoGroup(String),
}

/// Binds the control socket with mode 0660 (and the configured group), replacing a stale socket file
/// but never one a live daemon is serving.
pub fn bind(path: &Path, group: Option<&str>) -> Result<UnixListener, BindError> {
    let shown = path.display().to_string();
    let io_err = |source| BindError::Io { path: shown.clone(), source };
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(BindError::InUse(shown));
        }
        std::fs::remove_file(path).map_err(io_err)?;
    }
    let gid = match group {
        Some(name) => match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => Some(g.gid),
            _ => return Err(BindError::NoGroup(name.to_string())),
        },
        None => None,
    };
    // Bind under a tight umask so the socket never exists with wider permissions, even briefly.
    use nix::sys::stat::{Mode, umask};
    let old = umask(Mode::from_bits_truncate(0o117));
    let listener = UnixListener::bind(path);
    umask(old);
    let listener = listener.map_err(io_err)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io_err)?;
    if let Some(gid) = gid {
        nix::unistd::chown(path, None, Some(gid)).map_err(|e| io_err(io::Error::from(e)))?;
    }
    Ok(listener)
}

/// Accepts connections until the task is dropped.
pub async fn serve(listener: UnixListener, ctx: Arc<Ctx>) {
    let limits = Arc::new(Semaphore::new(ctx.config().daemon.max_clients));
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("control socket accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let ctx = ctx.clone();
        match limits.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    connection(stream, ctx).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tokio::spawn(async move {
                    let err = ApiError::new(ErrorCode::Internal, "too many clients connected; try again shortly");
                    let _ = reply(&mut { stream }, Response::from_result(Value::Null, Err(err))).await;
                });
            }
        }
    }
}

enum Frame {
    Line(Vec<u8>),
    TooLarge,
    Eof,
}

/// Reads one newline-terminated frame of at most `max` bytes (a final unterminated line counts).
async fn read_frame<R: AsyncRead + Unpin>(r: &mut BufReader<R>, max: usize) -> io::Result<Frame> {
    let mut buf = Vec::new();
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Ok(if buf.is_empty() { Frame::Eof } else { Frame::Line(buf) });
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if buf.len() + chunk.len() > max {
            return Ok(Frame::TooLarge);
        }
        buf.extend_from_slice(chunk);
        let used = done.unwrap_or(available.len());
        r.consume(used);
        if done.is_some() {
            return Ok(Frame::Line(buf));
        }
    }
}

async fn reply(stream: &mut UnixStream, resp: Response) -> io::Result<()> {
    let mut line = serde_json::to_vec(&resp)
        .unwrap_or_else(|_| br#"{"id":null,"error":{"code":"internal","message":"unserializable reply"}}"#.to_vec());
    line.push(b'\n');
    stream.write_all(&line).await
}

async fn connection(stream: UnixStream, ctx: Arc<Ctx>) {
    let origin = match getsockopt(&stream, PeerCredentials) {
        Ok(c) => Origin::Socket { uid: c.uid(), pid: c.pid() },
        Err(e) => {
            tracing::warn!("control socket: cannot read peer credentials, closing: {e}");
            return;
        }
    };
    let config = ctx.config();
    let (max, timeout) = (config.daemon.max_request_bytes, config.daemon.client_timeout.0);
    drop(config);
    let mut reader = BufReader::new(stream);
    loop {
        let line = match tokio::time::timeout(timeout, read_frame(&mut reader, max)).await {
            Err(_) => {
                tracing::debug!("{}: idle for {timeout:?}, closing", origin.describe());
                return;
            }
            Ok(Err(_)) | Ok(Ok(Frame::Eof)) => return,
            Ok(Ok(Frame::TooLarge)) => {
                let err = ApiError::bad_request(format!("request exceeds the maximum size of {max} bytes"));
                let _ = reply(reader.get_mut(), Response::from_result(Value::Null, Err(err))).await;
                return;
            }
            Ok(Ok(Frame::Line(line))) => line,
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let resp = match Request::decode(&line) {
            Err(bad) => {
                let (id, err) = *bad;
                Response::from_result(id, Err(err))
            }
            Ok(req) => {
                let id = req.id.clone();
                Response::from_result(id, run(&ctx, req, &origin).await)
            }
        };
        if reply(reader.get_mut(), resp).await.is_err() {
            return;
        }
    }
}

/// Runs a request: inline when it is cheap, on the blocking pool when it hashes a password.
pub async fn run(ctx: &Arc<Ctx>, req: Request, origin: &Origin) -> Result<Value, ApiError> {
    let result = run_now(ctx, req, origin).await;
    // The growing delay after a failed login is served here, without holding a thread.
    if let Err(e) = &result
        && e.delay_ms > 0
    {
        tokio::time::sleep(std::time::Duration::from_millis(e.delay_ms)).await;
    }
    result
}

async fn run_now(ctx: &Arc<Ctx>, req: Request, origin: &Origin) -> Result<Value, ApiError> {
    if api::is_slow(&req) {
        let (ctx, origin) = (ctx.clone(), origin.clone());
        tokio::task::spawn_blocking(move || api::handle(&ctx, &req, &origin))
            .await
            .unwrap_or_else(|e| Err(ApiError::internal(format!("handler panicked: {e}"))))
    } else {
        api::handle(ctx, &req, origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8], max: usize) -> Vec<String> {
        let mut r = BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        loop {
            match read_frame(&mut r, max).await.unwrap() {
                Frame::Line(l) => out.push(String::from_utf8(l).unwrap()),
                Frame::TooLarge => {
                    out.push("<too large>".into());
                    return out;
                }
                Frame::Eof => return out,
            }
        }
    }

    #[tokio::test]
    async fn frames_split_on_newlines_across_buffer_refills() {
        assert_eq!(frames(b"{\"a\":1}\n{\"b\":2}\nrest", 64).await, vec!["{\"a\":1}", "{\"b\":2}", "rest"]);
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_without_reading_it_all() {
        assert_eq!(frames(b"0123456789\nabc\n", 5).await, vec!["<too large>"]);
        assert_eq!(frames(b"01234\n", 5).await, vec!["01234"]);
    }
}
