//! Writes to the metadata store, off the async threads and in the order they were asked for:
//! a view saved just before its inquiry's redaction was seen can never land after the delete.
//! Nobody waits for a write but a redaction (its delete is done before the reply).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::MetadataStore;

type Job = Box<dyn FnOnce(&MetadataStore) + Send>;

pub(crate) struct StoreWriter {
    store: Arc<MetadataStore>,
    jobs: mpsc::UnboundedSender<Job>,
}

impl StoreWriter {
    pub(crate) fn new(store: Arc<MetadataStore>, rt: &tokio::runtime::Handle) -> StoreWriter {
        let (jobs, mut rx) = mpsc::unbounded_channel::<Job>();
        let s = store.clone();
        rt.spawn(async move {
            while let Some(job) = rx.recv().await {
                let s = s.clone();
                let _ = tokio::task::spawn_blocking(move || job(&s)).await;
            }
        });
        StoreWriter { store, jobs }
    }

    /// The store, for reads (call them from a blocking thread).
    pub(crate) fn store(&self) -> &Arc<MetadataStore> {
        &self.store
    }

    /// Queue a write; it runs after every write queued before it.
    pub(crate) fn write(&self, job: impl FnOnce(&MetadataStore) + Send + 'static) {
        let _ = self.jobs.send(Box::new(job));
    }

    /// Queue a write and wait until it (and every write before it) is done.
    pub(crate) async fn write_and_wait(&self, job: impl FnOnce(&MetadataStore) + Send + 'static) {
        let (done, wait) = oneshot::channel();
        self.write(move |s| {
            job(s);
            let _ = done.send(());
        });
        let _ = wait.await;
    }
}
