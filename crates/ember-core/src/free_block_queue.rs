//! [`FreeBlockQueue`]: the free KV-cache blocks in eviction order, with O(1) removal anywhere.
//!
//! A doubly linked list threaded through a flat `Vec` indexed by block id (no allocation after
//! construction). The head is the next block handed out (and, if it still holds a cached
//! prefix, the next one evicted); freed blocks are appended at the tail, so cached blocks are
//! evicted in least-recently-freed order. A prefix-cache hit on a free block removes it from the
//! middle in O(1).
//!
//! Invariants: `len` equals the number of linked blocks; a block is linked at most once;
//! `head`/`tail` are `None` exactly when the queue is empty. Violations (appending a linked
//! block, removing an unlinked one) are bugs in the caller and panic.

use crate::ids::BlockId;

#[derive(Debug, Clone, Copy, Default)]
struct Links {
    prev: Option<BlockId>,
    next: Option<BlockId>,
    linked: bool,
}

/// Free blocks in eviction order (head first).
#[derive(Debug, Clone)]
pub struct FreeBlockQueue {
    links: Vec<Links>,
    head: Option<BlockId>,
    tail: Option<BlockId>,
    len: usize,
}

impl FreeBlockQueue {
    /// A queue holding every block `0..num_blocks`, in id order.
    pub fn new(num_blocks: usize) -> Self {
        let mut queue = Self {
            links: vec![Links::default(); num_blocks],
            head: None,
            tail: None,
            len: 0,
        };
        for id in 0..num_blocks {
            let id = u32::try_from(id).expect("num_blocks must fit in u32");
            queue.append(BlockId(id));
        }
        queue
    }

    /// Number of blocks in the queue.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no block is free.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `block` is currently in the queue.
    pub fn contains(&self, block: BlockId) -> bool {
        self.links.get(block.index()).is_some_and(|l| l.linked)
    }

    /// The head block (next to be allocated), without removing it.
    pub fn front(&self) -> Option<BlockId> {
        self.head
    }

    /// Removes and returns the head block; `None` when empty.
    pub fn popleft(&mut self) -> Option<BlockId> {
        let head = self.head?;
        self.remove(head);
        Some(head)
    }

    /// Appends `block` at the tail (the last to be evicted).
    ///
    /// Panics if `block` is already in the queue (a double free).
    pub fn append(&mut self, block: BlockId) {
        let i = block.index();
        assert!(
            !self.links[i].linked,
            "{block} appended to the free queue twice"
        );
        self.links[i] = Links {
            prev: self.tail,
            next: None,
            linked: true,
        };
        match self.tail {
            Some(tail) => self.links[tail.index()].next = Some(block),
            None => self.head = Some(block),
        }
        self.tail = Some(block);
        self.len += 1;
    }

    /// Unlinks `block` from wherever it is in the queue, in O(1).
    ///
    /// Panics if `block` is not in the queue.
    pub fn remove(&mut self, block: BlockId) {
        let i = block.index();
        let Links { prev, next, linked } = self.links[i];
        assert!(
            linked,
            "{block} removed from the free queue but it is not there"
        );
        match prev {
            Some(p) => self.links[p.index()].next = next,
            None => self.head = next,
        }
        match next {
            Some(n) => self.links[n.index()].prev = prev,
            None => self.tail = prev,
        }
        self.links[i] = Links::default();
        self.len -= 1;
    }

    /// The blocks from head (next evicted) to tail.
    pub fn iter(&self) -> impl Iterator<Item = BlockId> + '_ {
        std::iter::successors(self.head, |b| self.links[b.index()].next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(q: &FreeBlockQueue) -> Vec<u32> {
        q.iter().map(|b| b.0).collect()
    }

    #[test]
    fn starts_full_in_order() {
        let q = FreeBlockQueue::new(4);
        assert_eq!(ids(&q), vec![0, 1, 2, 3]);
        assert_eq!(q.len(), 4);
        assert_eq!(q.front(), Some(BlockId(0)));
    }

    #[test]
    fn popleft_append_remove_middle() {
        let mut q = FreeBlockQueue::new(5);
        assert_eq!(q.popleft(), Some(BlockId(0)));
        q.remove(BlockId(2));
        assert_eq!(ids(&q), vec![1, 3, 4]);
        q.append(BlockId(2));
        q.append(BlockId(0));
        assert_eq!(ids(&q), vec![1, 3, 4, 2, 0]);
        q.remove(BlockId(0)); // tail
        q.remove(BlockId(1)); // head
        assert_eq!(ids(&q), vec![3, 4, 2]);
        assert!(!q.contains(BlockId(1)));
        assert!(q.contains(BlockId(4)));
        assert_eq!(q.len(), 3);
        while q.popleft().is_some() {}
        assert!(q.is_empty());
        assert_eq!(q.front(), None);
        assert_eq!(q.popleft(), None);
        q.append(BlockId(4));
        assert_eq!(ids(&q), vec![4]);
    }

    #[test]
    #[should_panic(expected = "twice")]
    fn double_append_panics() {
        let mut q = FreeBlockQueue::new(2);
        q.append(BlockId(1));
    }

    #[test]
    #[should_panic(expected = "not there")]
    fn removing_absent_panics() {
        let mut q = FreeBlockQueue::new(2);
        q.remove(BlockId(1));
        q.remove(BlockId(1));
    }
}
