//! Proxy-wasm shared queues: named per `vm_id`, registered by one VM (which is told when
//! messages arrive), resolvable and writable from any VM.

use crate::abi::Status;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug)]
struct Queue {
    /// The VM (index in the Envoy) and root context that registered it.
    owner: (usize, u32),
    messages: VecDeque<Vec<u8>>,
}

#[derive(Debug, Default)]
struct Inner {
    by_name: HashMap<(String, String), u32>,
    queues: HashMap<u32, Queue>,
    next_id: u32,
    /// `on_queue_ready` notifications not yet delivered: (vm index, root context, queue id).
    ready: VecDeque<(usize, u32, u32)>,
}

/// All shared queues of one simulated Envoy. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct SharedQueues {
    inner: Arc<Mutex<Inner>>,
    max_messages: usize,
}

impl SharedQueues {
    pub(crate) fn new(max_messages: usize) -> Self {
        SharedQueues {
            inner: Arc::default(),
            max_messages,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers (or re-registers, taking ownership) a queue; returns its id.
    pub(crate) fn register(&self, vm_id: &str, name: &str, owner: (usize, u32)) -> u32 {
        let mut inner = self.lock();
        let key = (vm_id.to_owned(), name.to_owned());
        if let Some(&id) = inner.by_name.get(&key) {
            if let Some(queue) = inner.queues.get_mut(&id) {
                queue.owner = owner;
            }
            return id;
        }
        inner.next_id += 1;
        let id = inner.next_id;
        inner.by_name.insert(key, id);
        inner.queues.insert(
            id,
            Queue {
                owner,
                messages: VecDeque::new(),
            },
        );
        id
    }

    pub(crate) fn resolve(&self, vm_id: &str, name: &str) -> Option<u32> {
        self.lock()
            .by_name
            .get(&(vm_id.to_owned(), name.to_owned()))
            .copied()
    }

    pub(crate) fn enqueue(&self, id: u32, message: Vec<u8>) -> Result<(), Status> {
        let mut inner = self.lock();
        let max = self.max_messages;
        let queue = inner.queues.get_mut(&id).ok_or(Status::NotFound)?;
        if queue.messages.len() >= max {
            return Err(Status::InternalFailure);
        }
        queue.messages.push_back(message);
        let (vm, context) = queue.owner;
        inner.ready.push_back((vm, context, id));
        Ok(())
    }

    /// The next message; `Empty` when there is none.
    pub(crate) fn dequeue(&self, id: u32) -> Result<Vec<u8>, Status> {
        let mut inner = self.lock();
        let queue = inner.queues.get_mut(&id).ok_or(Status::NotFound)?;
        queue.messages.pop_front().ok_or(Status::Empty)
    }

    pub(crate) fn take_ready(&self) -> Vec<(usize, u32, u32)> {
        self.lock().ready.drain(..).collect()
    }

    /// Messages waiting in queue `name` of `vm_id` (for assertions).
    pub fn len(&self, vm_id: &str, name: &str) -> Option<usize> {
        let inner = self.lock();
        let id = inner.by_name.get(&(vm_id.to_owned(), name.to_owned()))?;
        inner.queues.get(id).map(|q| q.messages.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_enqueue_dequeue() {
        let queues = SharedQueues::new(2);
        let id = queues.register("", "q", (1, 1));
        assert_eq!(queues.resolve("", "q"), Some(id));
        assert_eq!(queues.resolve("", "nope"), None);
        assert_eq!(queues.dequeue(id), Err(Status::Empty));
        queues.enqueue(id, b"a".to_vec()).unwrap();
        queues.enqueue(id, b"b".to_vec()).unwrap();
        assert_eq!(
            queues.enqueue(id, b"c".to_vec()),
            Err(Status::InternalFailure)
        );
        assert_eq!(queues.take_ready(), vec![(1, 1, id), (1, 1, id)]);
        assert_eq!(queues.dequeue(id).unwrap(), b"a");
        assert_eq!(queues.len("", "q"), Some(1));
        assert_eq!(queues.enqueue(999, vec![]), Err(Status::NotFound));
    }
}
