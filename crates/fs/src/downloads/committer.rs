//! Checksums and commits of finished downloads, on one thread of the lowest CPU priority:
//! a cold read's last blocks are still going to the reader when its download ends, and on
//! two cores a checksum of the whole file at normal priority took CPU from that reader.
//! At nice 19 it still progresses under load, only behind everything else.

use std::sync::mpsc;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

pub(crate) struct Committer {
    jobs: mpsc::Sender<Job>,
}

impl Committer {
    /// The thread ends when the committer is dropped (after the jobs already sent).
    pub(crate) fn start() -> std::io::Result<Committer> {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("personafs-commit".into())
            .spawn(move || {
                // SAFETY: setpriority only changes the scheduling weight of the calling
                // thread (Linux: PRIO_PROCESS with who 0 is this thread). Lowering it needs
                // no privilege.
                unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
                for job in rx {
                    job();
                }
            })?;
        Ok(Committer { jobs })
    }

    /// Run `work` on the commit thread and wait for its result; `None` if the thread is gone.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(work());
        });
        self.jobs.send(job).ok()?;
        rx.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_in_order_on_a_thread_of_the_lowest_priority() {
        let c = Committer::start().unwrap();
        let nice = c
            .run(|| {
                // SAFETY: getpriority reads the calling thread's nice value.
                unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
            })
            .await;
        assert_eq!(nice, Some(19));
        let order = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let runs: Vec<_> = (0..5)
            .map(|i| {
                let order = order.clone();
                c.run(move || order.lock().push(i))
            })
            .collect();
        for r in runs {
            assert_eq!(r.await, Some(()));
        }
        assert_eq!(*order.lock(), vec![0, 1, 2, 3, 4]);
        // Our own priority is untouched.
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }, 0);
    }
}
