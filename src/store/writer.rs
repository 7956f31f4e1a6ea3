//! The writer: one thread through which every page's commit goes, so that fetching the next
//! page, parsing, and committing the last one run at the same time, and commits that queue up
//! while one is being written go into the next transaction together (group commit).
//!
//! Each commit still lands with its own checkpoint, in order; a group is one transaction, so a
//! kill loses at most the group being written, whose pages the next run fetches again from the
//! last checkpoint that landed. Nothing waits for a group to fill: a commit that finds the
//! writer idle is written at once, alone. Once a group fails, every later commit of the run
//! fails with it, so no checkpoint can land past a page that did not.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::commit::{Commit, Committed};
use super::database::Store;
use super::error::Error;

/// Rows (and sub-resource rows) written in one transaction at most: bounds a transaction's size
/// (and what a kill can cost to fetch again). Large groups are what make random-keyed indexes
/// (`id`, `event_id`) cheap: a leaf page touched by many rows of a group is written once.
const MAX_GROUP_ROWS: usize = 5_000;

/// Commits in one transaction at most (fan-out commits hold one parent each).
const MAX_GROUP: usize = 512;

/// How long the writer waits for more commits while they keep arriving: long enough for a
/// walk's next pages, short enough that nobody notices.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// Commits queued for the writer at most; a producer beyond it waits (backpressure).
const QUEUE: usize = 128;

struct Job {
    commit: Commit,
    reply: oneshot::Sender<Result<Committed, Error>>,
}

/// A commit handed to the writer; `landed` waits for its transaction.
pub(crate) struct Pending(oneshot::Receiver<Result<Committed, Error>>);

impl Pending {
    /// What the commit wrote, once its group has committed (or why it did not).
    pub(crate) async fn landed(self) -> Result<Committed, Error> {
        self.0.await.unwrap_or(Err(Error::WriterGone))
    }

    /// The answer if it is already there: `None` while the commit is still queued or being
    /// written.
    pub(crate) fn try_landed(&mut self) -> Option<Result<Committed, Error>> {
        match self.0.try_recv() {
            Ok(r) => Some(r),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(Err(Error::WriterGone)),
        }
    }
}

/// Dropping it closes the queue: the thread writes what is queued, then ends.
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread for `store`.
    pub(crate) fn start(store: Arc<Store>) -> Self {
        let (jobs, mut queue) = mpsc::channel::<Job>(QUEUE);
        // Should the thread not start, the queue's receiver is dropped with it, and every commit
        // answers `WriterGone`.
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let mut group: Vec<Job> = Vec::with_capacity(MAX_GROUP);
                // After a failed group nothing more is written this run: a later, smaller commit
                // might fit where the failed one did not, and land a checkpoint past pages that
                // were never stored.
                let mut poisoned: Option<Error> = None;
                while let Some(first) = queue.blocking_recv() {
                    if let Some(e) = &poisoned {
                        let _ = first.reply.send(Err(e.clone()));
                        continue;
                    }
                    let mut rows = first.commit.size();
                    group.push(first);
                    // Gather what is queued, and wait a moment for more while more keeps coming.
                    let mut lingered = false;
                    while group.len() < MAX_GROUP && rows < MAX_GROUP_ROWS {
                        match queue.try_recv() {
                            Ok(job) => {
                                rows += job.commit.size();
                                group.push(job);
                                lingered = false;
                            }
                            Err(mpsc::error::TryRecvError::Empty) if !lingered => {
                                std::thread::sleep(LINGER);
                                lingered = true;
                            }
                            Err(_) => break,
                        }
                    }
                    let commits: Vec<Commit> =
                        group.iter_mut().map(|j| std::mem::take(&mut j.commit)).collect();
                    match store.commit_group(&commits, chrono::Utc::now()) {
                        Ok(done) => {
                            for (job, committed) in group.drain(..).zip(done) {
                                let _ = job.reply.send(Ok(committed));
                            }
                        }
                        Err(e) => {
                            for job in group.drain(..) {
                                let _ = job.reply.send(Err(e.clone()));
                            }
                            poisoned = Some(e);
                        }
                    }
                }
            });
        Self {
            jobs,
            thread: thread.ok(),
        }
    }

    /// Closes the queue and waits for the thread to write what is queued and end, dropping its
    /// share of the store (blocking: call it off the async threads).
    pub(crate) fn close(self) {
        let Self { jobs, thread } = self;
        drop(jobs);
        if let Some(t) = thread {
            let _ = t.join();
        }
    }

    /// Queues `commit` behind those already queued (waiting while the queue is full).
    pub(crate) async fn send(&self, commit: Commit) -> Pending {
        // From here its bytes are given back without waiting for anything but the writer.
        commit.held.queue();
        let (reply, answer) = oneshot::channel();
        // A closed queue (no writer thread) drops the job, and `landed` says so.
        let _ = self.jobs.send(Job { commit, reply }).await;
        Pending(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Checkpoint, Row};

    #[derive(Debug, serde::Serialize)]
    struct NotABooking {
        no_such_column: i64,
    }

    fn checkpoint_only() -> Commit {
        Commit {
            stream: "bookings",
            checkpoint: Some(Checkpoint {
                cursor: Some("later".into()),
                ..Checkpoint::default()
            }),
            ..Commit::default()
        }
    }

    #[tokio::test]
    async fn after_a_failed_group_no_later_commit_lands() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("w.sqlite")).unwrap());
        let writer = Writer::start(Arc::clone(&store));
        let bad = Commit {
            stream: "bookings",
            rows: vec![Row {
                table: "bookings",
                record: Box::new(NotABooking { no_such_column: 1 }),
                raw_json: "{}".into(),
                item_key: "x".into(),
            }],
            ..Commit::default()
        };
        assert!(writer.send(bad).await.landed().await.is_err());
        // A commit that would succeed on its own is refused: its checkpoint would land past
        // the page that failed.
        assert!(writer.send(checkpoint_only()).await.landed().await.is_err());
        assert_eq!(store.load_checkpoint("bookings").unwrap().cursor, None);

        let writer = Writer::start(Arc::clone(&store));
        writer.send(checkpoint_only()).await.landed().await.unwrap();
        assert_eq!(
            store.load_checkpoint("bookings").unwrap().cursor.as_deref(),
            Some("later")
        );
    }
}
