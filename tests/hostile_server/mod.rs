//! A server in Persona's place that attacks the client: bodies of gigabytes made on the fly
//! (never held in memory), answers that never come or trickle a byte at a time, a 429 whose
//! reset is days away, a redirect that would carry a signed URL on. Beside the attacks it
//! serves a few good inquiries and their files, so a test can check the rest of a mount keeps
//! answering. Plain HTTP/1.1 over tokio: full control of every byte and every pause.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Inquiries that answer well, with one 100,000-byte file each.
pub const GOOD: [&str; 3] = [
    "inq_Good000000001",
    "inq_Good000000002",
    "inq_Good000000003",
];
pub const GOOD_FILE_SIZE: usize = 100_000;
/// A chunked body of 2 GB: a valid start, then documents repeated.
pub const HUGE_BODY: &str = "inq_HugeBody00001";
/// `Content-Length: 2 GB`, then the same body.
pub const HUGE_LENGTH: &str = "inq_HugeLength001";
/// The request is read; no answer ever comes.
pub const NO_HEADERS: &str = "inq_NoHeaders0001";
/// Headers, then a byte a second.
pub const TRICKLE: &str = "inq_Trickle000001";
/// 429 with `RateLimit-Reset` and `Retry-After` of a hundred million seconds.
pub const RATE_LIMITED: &str = "inq_RateLimited01";
/// A good inquiry whose one file trickles a byte every 100 ms.
pub const TRICKLE_FILE: &str = "inq_TrickleFile01";
/// A good inquiry whose file URL redirects (same host) to a good file.
pub const REDIRECT: &str = "inq_Redirect00001";
/// A valid inquiry of about [`MANY_BYTES`]: tiny `included` objects, the most memory a body
/// under the cap can cost once parsed.
pub const MANY_OBJECTS: &str = "inq_ManyObjects01";
pub const MANY_BYTES: usize = 15 << 20;
/// A valid inquiry with an 8 MiB string attribute (under the body cap).
pub const LONG_STRING: &str = "inq_LongString001";
/// The file names of the good and the hostile inquiries.
pub const GOOD_FILE: &str = "doc_Good-front-photo.jpg";
pub const TRICKLE_FILE_NAME: &str = "doc_Slow-front-photo.jpg";
pub const REDIRECT_FILE: &str = "doc_Moved-front-photo.jpg";
pub const LONG_STRING_LEN: usize = 8 << 20;

/// The token in the URL that redirects: it must never appear in a later request.
pub const SECRET_TOKEN: &str = "SECRETtok3n";
const HUGE: u64 = 2_000_000_000;

/// What `GET /api/v1/inquiries` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ListMode {
    /// Every inquiry, one page.
    Normal = 0,
    /// A 2 GB chunked page.
    Huge = 1,
    /// No answer at all.
    Silent = 2,
    /// 429, reset in a hundred million seconds.
    Limited = 3,
    /// Headers, then a byte a second.
    Trickle = 4,
}

pub struct HostileServer {
    pub addr: SocketAddr,
    list_mode: Arc<AtomicU8>,
    /// Every request head received, in order (to look for a leaked token).
    pub heads: Arc<Mutex<Vec<String>>>,
    /// Body bytes sent by the endless generators, in all.
    pub huge_bytes_sent: Arc<AtomicU64>,
}

impl HostileServer {
    /// Listen on a free port of 127.0.0.1, serving on `rt`.
    pub fn start(rt: &tokio::runtime::Runtime) -> HostileServer {
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = HostileServer {
            addr,
            list_mode: Arc::new(AtomicU8::new(ListMode::Normal as u8)),
            heads: Arc::default(),
            huge_bytes_sent: Arc::default(),
        };
        let state = State {
            base: server.base(),
            list_mode: server.list_mode.clone(),
            heads: server.heads.clone(),
            huge_bytes_sent: server.huge_bytes_sent.clone(),
        };
        rt.spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let _ = serve(sock, state).await;
                });
            }
        });
        server
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn api_base(&self) -> String {
        format!("{}/api/v1", self.base())
    }

    pub fn set_list_mode(&self, mode: ListMode) {
        self.list_mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Every request head received so far, joined.
    pub fn all_heads(&self) -> String {
        self.heads.lock().join("\n----\n")
    }
}

#[derive(Clone)]
struct State {
    base: String,
    list_mode: Arc<AtomicU8>,
    heads: Arc<Mutex<Vec<String>>>,
    huge_bytes_sent: Arc<AtomicU64>,
}

/// One connection: requests one after the other (keep-alive), until an attack ends it.
async fn serve(mut sock: TcpStream, state: State) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let head = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                buf.drain(..end + 4);
                break head;
            }
            let mut chunk = [0u8; 4096];
            let n = sock.read(&mut chunk).await?;
            if n == 0 || buf.len() > 64 * 1024 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        state.heads.lock().push(head.clone());
        let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if !answer(&mut sock, &state, path, query).await? {
            return Ok(());
        }
    }
}

/// Answer one request; `false` when the connection must end (or never answers again).
async fn answer(
    sock: &mut TcpStream,
    state: &State,
    path: &str,
    _query: &str,
) -> std::io::Result<bool> {
    if path == "/api/v1/inquiries" {
        return list(sock, state).await;
    }
    if let Some(id) = path.strip_prefix("/api/v1/inquiries/") {
        return retrieve(sock, state, id).await;
    }
    match path {
        "/files/good.jpg" => {
            send(
                sock,
                "200 OK",
                "image/jpeg",
                &[],
                &vec![b'G'; GOOD_FILE_SIZE],
            )
            .await?;
            Ok(true)
        }
        "/files/redirect.jpg" => {
            let location = format!("{}/files/good.jpg?access_token=OTHERtoken", state.base);
            send(
                sock,
                "302 Found",
                "text/plain",
                &[("Location", &location)],
                b"",
            )
            .await?;
            Ok(true)
        }
        // A length it never sends: ten bytes, then the connection ends.
        "/files/short.jpg" => {
            let len = GOOD_FILE_SIZE.to_string();
            head(sock, "200 OK", "image/jpeg", &[("Content-Length", &len)]).await?;
            sock.write_all(&[b'S'; 10]).await?;
            Ok(false)
        }
        "/files/trickle.jpg" => {
            head(
                sock,
                "200 OK",
                "image/jpeg",
                &[("Content-Length", &GOOD_FILE_SIZE.to_string())],
            )
            .await?;
            trickle(sock, Duration::from_millis(100)).await
        }
        _ => not_found(sock).await,
    }
}

async fn list(sock: &mut TcpStream, state: &State) -> std::io::Result<bool> {
    let mode = state.list_mode.load(Ordering::SeqCst);
    match mode {
        m if m == ListMode::Huge as u8 => {
            let start = r#"{"data": ["#;
            let item = json!({"type": "inquiry", "id": "inq_Repeated0000001",
                "attributes": {"status": "completed"}})
            .to_string()
                + ",";
            huge_chunked(sock, state, start, &item).await
        }
        m if m == ListMode::Silent as u8 => silent(sock).await,
        m if m == ListMode::Limited as u8 => rate_limited(sock).await,
        m if m == ListMode::Trickle as u8 => {
            head(
                sock,
                "200 OK",
                "application/json",
                &[("Content-Length", "100000")],
            )
            .await?;
            trickle(sock, Duration::from_secs(1)).await
        }
        _ => {
            let ids = GOOD.iter().chain(&[
                HUGE_BODY,
                HUGE_LENGTH,
                NO_HEADERS,
                TRICKLE,
                RATE_LIMITED,
                TRICKLE_FILE,
                REDIRECT,
                LONG_STRING,
                MANY_OBJECTS,
            ]);
            let data: Vec<Value> = ids
                .map(|id| {
                    json!({"type": "inquiry", "id": id, "attributes": {
                    "status": "completed", "created-at": "2026-01-01T00:00:00.000Z"}})
                })
                .collect();
            let body = json!({"data": data, "links": {"next": null}}).to_string();
            send(sock, "200 OK", "application/json", &[], body.as_bytes()).await?;
            Ok(true)
        }
    }
}

fn inquiry_start(id: &str) -> String {
    format!(
        r#"{{"data": {{"type": "inquiry", "id": "{id}", "attributes": {{"status": "completed",
        "created-at": "2026-01-01T00:00:00.000Z"}}}}, "included": ["#
    )
}

/// A valid inquiry with one document whose front photo is at `file` (`byte-size` 100,000).
fn inquiry_with_file(id: &str, base: &str, object: &str, file: &str, extra: Value) -> Vec<u8> {
    json!({
        "data": {"type": "inquiry", "id": id, "attributes": {"status": "completed",
            "created-at": "2026-01-01T00:00:00.000Z", "note": extra}},
        "included": [{"type": "document/generic", "id": object, "attributes": {
            "front-photo": {"filename": "p.jpg", "byte-size": GOOD_FILE_SIZE,
                "url": format!("{base}/files/{file}")}}}]
    })
    .to_string()
    .into_bytes()
}

async fn retrieve(sock: &mut TcpStream, state: &State, id: &str) -> std::io::Result<bool> {
    let base = &state.base;
    let ok = |body: Vec<u8>| body;
    let body = match id {
        id if GOOD.contains(&id) => ok(inquiry_with_file(
            id,
            base,
            "doc_Good",
            "good.jpg?access_token=goodtoken",
            Value::Null,
        )),
        TRICKLE_FILE => ok(inquiry_with_file(
            id,
            base,
            "doc_Slow",
            "trickle.jpg?access_token=slowtoken",
            Value::Null,
        )),
        REDIRECT => ok(inquiry_with_file(
            id,
            base,
            "doc_Moved",
            &format!("redirect.jpg?access_token={SECRET_TOKEN}"),
            Value::Null,
        )),
        LONG_STRING => ok(inquiry_with_file(
            id,
            base,
            "doc_Long",
            "good.jpg?access_token=longtoken",
            Value::from("x".repeat(LONG_STRING_LEN)),
        )),
        HUGE_BODY | HUGE_LENGTH => {
            let item = json!({"type": "document/generic", "id": "doc_Repeated",
                "attributes": {"status": "processed", "front-photo": {"filename": "p.jpg",
                "byte-size": 1, "url": format!("{base}/files/good.jpg?access_token=t")}}})
            .to_string()
                + ",";
            let start = inquiry_start(id);
            return if id == HUGE_BODY {
                huge_chunked(sock, state, &start, &item).await
            } else {
                huge_with_length(sock, state, &start, &item).await
            };
        }
        MANY_OBJECTS => {
            let mut body = inquiry_start(id).into_bytes();
            let mut n = 0u32;
            while body.len() < MANY_BYTES {
                let item = format!(r#"{{"type":"verification/database","id":"ver_{n:08}"}},"#);
                body.extend_from_slice(item.as_bytes());
                n += 1;
            }
            body.extend_from_slice(br#"{"type":"verification/database","id":"ver_last"}]}"#);
            body
        }
        NO_HEADERS => return silent(sock).await,
        TRICKLE => {
            head(
                sock,
                "200 OK",
                "application/json",
                &[("Content-Length", "100000")],
            )
            .await?;
            return trickle(sock, Duration::from_secs(1)).await;
        }
        RATE_LIMITED => return rate_limited(sock).await,
        _ => return not_found(sock).await,
    };
    send(sock, "200 OK", "application/json", &[], &body).await?;
    Ok(true)
}

async fn head(
    sock: &mut TcpStream,
    status: &str,
    content_type: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<()> {
    let mut text = format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n");
    for (k, v) in headers {
        text += &format!("{k}: {v}\r\n");
    }
    text += "\r\n";
    sock.write_all(text.as_bytes()).await
}

async fn send(
    sock: &mut TcpStream,
    status: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let len = body.len().to_string();
    let mut all = headers.to_vec();
    all.push(("Content-Length", &len));
    head(sock, status, content_type, &all).await?;
    sock.write_all(body).await
}

/// Read nothing more, answer nothing: hold the connection until the client leaves.
async fn silent(sock: &mut TcpStream) -> std::io::Result<bool> {
    let mut sink = [0u8; 1024];
    while sock.read(&mut sink).await? > 0 {}
    Ok(false)
}

/// Persona's answer for an id it does not have.
async fn not_found(sock: &mut TcpStream) -> std::io::Result<bool> {
    let body = json!({"errors": [{"title": "Record not found"}]}).to_string();
    send(
        sock,
        "404 Not Found",
        "application/json",
        &[],
        body.as_bytes(),
    )
    .await?;
    Ok(true)
}

async fn rate_limited(sock: &mut TcpStream) -> std::io::Result<bool> {
    let body = json!({"errors": [{"title": "Too Many Requests"}]}).to_string();
    let headers = [
        ("RateLimit-Limit", "300"),
        ("RateLimit-Remaining", "0"),
        ("RateLimit-Reset", "100000000"),
        ("Retry-After", "100000000"),
    ];
    send(
        sock,
        "429 Too Many Requests",
        "application/json",
        &headers,
        body.as_bytes(),
    )
    .await?;
    Ok(true)
}

/// One byte per `every`, for as long as the client stays.
async fn trickle(sock: &mut TcpStream, every: Duration) -> std::io::Result<bool> {
    loop {
        sock.write_all(b" ").await?;
        // The trickle's pace is the attack.
        tokio::time::sleep(every).await;
    }
}

/// `start`, then `item` repeated up to 2 GB, in 64 KiB chunks made from one buffer.
async fn huge_chunked(
    sock: &mut TcpStream,
    state: &State,
    start: &str,
    item: &str,
) -> std::io::Result<bool> {
    head(
        sock,
        "200 OK",
        "application/json",
        &[("Transfer-Encoding", "chunked")],
    )
    .await?;
    let block = repeated(item);
    let chunk = |data: &[u8]| {
        let mut c = format!("{:x}\r\n", data.len()).into_bytes();
        c.extend_from_slice(data);
        c.extend_from_slice(b"\r\n");
        c
    };
    sock.write_all(&chunk(start.as_bytes())).await?;
    let framed = chunk(&block);
    let mut sent = 0u64;
    while sent < HUGE {
        sock.write_all(&framed).await?;
        sent += block.len() as u64;
        state
            .huge_bytes_sent
            .fetch_add(block.len() as u64, Ordering::Relaxed);
    }
    sock.write_all(&chunk(b"{}]}")).await?;
    sock.write_all(b"0\r\n\r\n").await?;
    Ok(false)
}

/// As `huge_chunked`, announced with a `Content-Length` of 2 GB.
async fn huge_with_length(
    sock: &mut TcpStream,
    state: &State,
    start: &str,
    item: &str,
) -> std::io::Result<bool> {
    let block = repeated(item);
    let total = start.len() as u64 + HUGE.div_ceil(block.len() as u64) * block.len() as u64 + 4;
    head(
        sock,
        "200 OK",
        "application/json",
        &[("Content-Length", &total.to_string())],
    )
    .await?;
    sock.write_all(start.as_bytes()).await?;
    let mut sent = 0u64;
    while sent < HUGE {
        sock.write_all(&block).await?;
        sent += block.len() as u64;
        state
            .huge_bytes_sent
            .fetch_add(block.len() as u64, Ordering::Relaxed);
    }
    sock.write_all(b"{}]}").await?;
    Ok(false)
}

/// About 64 KiB of `item` repeated.
fn repeated(item: &str) -> Vec<u8> {
    item.repeat((64 * 1024 / item.len()).max(1)).into_bytes()
}
