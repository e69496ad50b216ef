//! Read replies moved from a file with splice(2): the file's page-cache pages go into a
//! pipe by reference and from the pipe into the kernel's request, so the data is copied
//! once (pipe to request) instead of read into this process and written back. Linux only.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::ll::fuse_abi as abi;

/// A pipe per thread, grown to hold the largest reply seen.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Buffers (slots) it holds: each holds one page, or part of one.
    slots: usize,
}

thread_local! {
    static PIPE: RefCell<Option<Pipe>> = const { RefCell::new(None) };
}

const PAGE: usize = 4096;

/// Slots a reply of `len` bytes takes: the header, the pages, and one more where the range
/// does not start on a page boundary.
fn slots_for(len: usize) -> usize {
    2 + len.div_ceil(PAGE)
}

fn pipe_for(slots: usize) -> io::Result<Pipe> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    // Non-blocking both ends: a pipe that is somehow too small makes a step fail (and the
    // reply be copied) instead of waiting forever.
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    let bytes = fcntl(&write, FcntlArg::F_SETPIPE_SZ((slots * PAGE) as i32))?;
    Ok(Pipe {
        read,
        write,
        slots: bytes as usize / PAGE,
    })
}

/// Reply to request `unique` with `len` bytes of `file` at `offset`, spliced through this
/// thread's pipe into `dev` (the FUSE device). `Ok(false)` when nothing was sent and the
/// caller should reply by copying: the file has fewer bytes there, or a pipe could not be
/// made large enough (unprivileged, a pipe is at most `/proc/sys/fs/pipe-max-size`).
/// On any failure the pipe is dropped (it may hold part of a message).
pub(crate) fn reply(
    dev: BorrowedFd<'_>,
    unique: u64,
    file: BorrowedFd<'_>,
    offset: u64,
    len: usize,
) -> io::Result<bool> {
    let slots = slots_for(len);
    PIPE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|p| p.slots < slots) {
            *slot = None;
            match pipe_for(slots) {
                Ok(p) if p.slots >= slots => *slot = Some(p),
                _ => return Ok(false),
            }
        }
        let pipe = slot.as_ref().expect("pipe made above");
        let result = send(pipe, dev, unique, file, offset, len);
        if !matches!(result, Ok(true)) {
            *slot = None;
        }
        result
    })
}

fn send(
    pipe: &Pipe,
    dev: BorrowedFd<'_>,
    unique: u64,
    file: BorrowedFd<'_>,
    offset: u64,
    len: usize,
) -> io::Result<bool> {
    use nix::fcntl::{SpliceFFlags, splice};
    let header = abi::fuse_out_header {
        len: (size_of::<abi::fuse_out_header>() + len) as u32,
        error: 0,
        unique,
    };
    let header_bytes = zerocopy::IntoBytes::as_bytes(&header);
    // The pipe is empty and larger than the message: neither step can block. Until the
    // last step nothing has reached the kernel, so a failure here means "copy instead".
    if nix::unistd::write(&pipe.write, header_bytes) != Ok(header_bytes.len()) {
        return Ok(false);
    }
    let mut at = offset as i64;
    let mut moved = 0;
    while moved < len {
        let n = splice(
            file,
            Some(&mut at),
            pipe.write.as_fd(),
            None,
            len - moved,
            SpliceFFlags::SPLICE_F_MOVE,
        );
        match n {
            Ok(0) | Err(_) => return Ok(false), // the file ends sooner, or cannot splice
            Ok(n) => moved += n,
        }
    }
    let total = header_bytes.len() + len;
    let sent = splice(
        pipe.read.as_fd(),
        None,
        dev,
        None,
        total,
        SpliceFFlags::SPLICE_F_MOVE,
    )?;
    if sent != total {
        return Err(io::Error::other(format!(
            "spliced {sent} of a {total}-byte reply"
        )));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsFd;

    use nix::fcntl::{FcntlArg, OFlag, fcntl};

    use super::*;

    /// A pipe standing in for the FUSE device: what `reply` sends can be read back.
    fn device() -> (OwnedFd, OwnedFd) {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        fcntl(&w, FcntlArg::F_SETPIPE_SZ(1 << 20)).unwrap();
        fcntl(&r, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
        (r, w)
    }

    fn file_of(bytes: &[u8]) -> std::fs::File {
        let mut f = tempfile_in_tmp();
        f.write_all(bytes).unwrap();
        f
    }

    fn tempfile_in_tmp() -> std::fs::File {
        let path = std::env::temp_dir().join(format!(
            "fuser-splice-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }

    #[test]
    fn a_spliced_reply_is_the_header_then_the_files_bytes() {
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let file = file_of(&bytes);
        let (dev_r, dev_w) = device();
        assert!(reply(dev_w.as_fd(), 42, file.as_fd(), 1000, 70_000).unwrap());
        let mut got = vec![0u8; 1 << 20];
        let n = nix::unistd::read(&dev_r, &mut got).unwrap();
        assert_eq!(n, 16 + 70_000);
        assert_eq!(
            u32::from_ne_bytes(got[0..4].try_into().unwrap()),
            16 + 70_000
        );
        assert_eq!(i32::from_ne_bytes(got[4..8].try_into().unwrap()), 0);
        assert_eq!(u64::from_ne_bytes(got[8..16].try_into().unwrap()), 42);
        assert_eq!(&got[16..n], &bytes[1000..71_000]);
    }

    #[test]
    fn a_range_past_the_end_sends_nothing_and_asks_for_a_copy() {
        let file = file_of(&[7u8; 5000]);
        let (dev_r, dev_w) = device();
        assert!(!reply(dev_w.as_fd(), 43, file.as_fd(), 4000, 4096).unwrap());
        let mut got = [0u8; 64];
        assert_eq!(
            nix::unistd::read(&dev_r, &mut got),
            Err(nix::errno::Errno::EAGAIN)
        );
        // The thread's next reply is whole again.
        assert!(reply(dev_w.as_fd(), 44, file.as_fd(), 0, 1000).unwrap());
        let mut got = vec![0u8; 4096];
        assert_eq!(nix::unistd::read(&dev_r, &mut got).unwrap(), 1016);
        assert_eq!(u64::from_ne_bytes(got[8..16].try_into().unwrap()), 44);
    }
}
