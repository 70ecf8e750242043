//! SHA-256 on a second core for `verify` and `decrypt`: the device installer hands each chunk's
//! plaintext to this [`ImageHasher`], which batches it and passes it to a hashing thread, so that
//! hashing and decrypting overlap. The digest is exactly SHA-256 of the bytes given, in order.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use sbsfu_device::ImageHasher;
use sha2::{Digest, Sha256};

/// Bytes handed to the hashing thread at a time.
const BATCH: usize = 256 << 10;
/// Batches on their way to the hashing thread.
const IN_FLIGHT: usize = 4;

enum Job {
    Data(Vec<u8>),
    Finish,
}

/// An [`ImageHasher`] whose SHA-256 runs on its own thread.
pub struct DigestThread {
    batch: Vec<u8>,
    jobs: Option<SyncSender<Job>>,
    digests: Receiver<[u8; 32]>,
    free: Receiver<Vec<u8>>,
    worker: Option<JoinHandle<()>>,
}

impl DigestThread {
    /// Starts the hashing thread.
    pub fn start() -> Self {
        let (jobs, job_rx) = mpsc::sync_channel::<Job>(IN_FLIGHT);
        let (digest_tx, digests) = mpsc::channel();
        let (free_tx, free) = mpsc::channel();
        let worker = std::thread::spawn(move || {
            let mut h = Sha256::new();
            for job in job_rx {
                match job {
                    Job::Data(mut bytes) => {
                        Digest::update(&mut h, &bytes);
                        bytes.clear();
                        let _ = free_tx.send(bytes);
                    }
                    Job::Finish => {
                        let _ = digest_tx.send(Digest::finalize_reset(&mut h).into());
                    }
                }
            }
        });
        Self {
            batch: Vec::with_capacity(BATCH),
            jobs: Some(jobs),
            digests,
            free,
            worker: Some(worker),
        }
    }

    fn send(&mut self, job: Job) {
        // If the thread is gone, the digest below never arrives and verification fails closed.
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(job);
        }
    }

    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let next = self
            .free
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let full = std::mem::replace(&mut self.batch, next);
        self.send(Job::Data(full));
    }
}

impl ImageHasher for DigestThread {
    fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = BATCH - self.batch.len();
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.batch.extend_from_slice(now);
            bytes = later;
            if self.batch.len() == BATCH {
                self.flush();
            }
        }
    }

    /// Waits for the hashing thread. Should it have died, the result is all zeros, which matches
    /// no image digest: the installer then reports an authentication failure.
    fn finalize_reset(&mut self) -> [u8; 32] {
        self.flush();
        self.send(Job::Finish);
        self.digests.recv().unwrap_or([0; 32])
    }
}

impl Drop for DigestThread {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_digest_as_sha256_for_any_split() {
        let data: Vec<u8> = (0..3 * BATCH + 12345).map(|i| (i * 13) as u8).collect();
        let expected: [u8; 32] = Sha256::digest(&data).into();
        let mut h = DigestThread::start();
        for piece in [1usize, 4096, BATCH, BATCH + 1, 7] {
            for part in data.chunks(piece) {
                h.update(part);
            }
            assert_eq!(h.finalize_reset(), expected, "pieces of {piece}");
        }
        assert_eq!(h.finalize_reset(), <[u8; 32]>::from(Sha256::digest([])));
    }
}
