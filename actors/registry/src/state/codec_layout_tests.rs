//! The memory a map built by [`insert_ascending`] takes, counted by the allocator.
//!
//! The count is per thread (a thread-local counter the allocator bumps only while a test turns it
//! on), so the crate's other tests running beside this one do not disturb it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use imbl::OrdMap;

use super::insert_ascending;

struct CountingAlloc;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: the thread-local may be gone while a thread is being torn down.
    let on = COUNTING.try_with(Cell::get).unwrap_or(false);
    if on {
        let _ = LIVE.try_with(|l| l.set(l.get() + delta));
    }
}

// The only unsafe code of the crate, in its tests: a counting allocator is what can see how much
// memory a map's layout takes. SAFETY: every call is passed to `System` unchanged; the counting
// touches only thread-locals that need no allocation.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Bytes still allocated by this thread after `build` returns what it built.
fn live_bytes<T>(build: impl FnOnce() -> T) -> (T, isize) {
    LIVE.with(|l| l.set(0));
    COUNTING.with(|c| c.set(true));
    let built = build();
    COUNTING.with(|c| c.set(false));
    (built, LIVE.with(Cell::get))
}

/// A record about the size of an entity's (a 16-byte key and a 272-byte value).
type Record = (u64, [u64; 35]);

fn records(n: u64) -> Vec<Record> {
    (0..n).map(|i| (i, [i; 35])).collect()
}

#[test]
fn the_loaded_maps_are_laid_out_in_full_leaves() {
    const N: u64 = 50_000;
    // The records are allocated before the count starts, in batches as the snapshot's builder
    // receives them; what the builds allocate and free on the way cancels out.
    let input: Vec<Vec<Record>> = records(N).chunks(4096).map(<[_]>::to_vec).collect();
    let (one_by_one, plain) = live_bytes(|| {
        let mut m = OrdMap::new();
        for &(k, v) in input.iter().flatten() {
            m.insert(k, v);
        }
        m
    });
    let (two_passes, dense) = live_bytes(|| {
        let mut m = OrdMap::new();
        for batch in &input {
            insert_ascending(&mut m, batch.clone());
        }
        m
    });
    assert_eq!(one_by_one, two_passes, "the same map either way");
    let payload = N as isize * std::mem::size_of::<Record>() as isize;
    eprintln!("{N} records of {payload} bytes: one by one {plain} bytes, two passes {dense}");
    // In order one by one: half-full leaves, twice the payload. In two passes: within a few
    // per cent of it (the leaves where one batch meets the next, and the branches).
    assert!(
        plain > payload * 19 / 10,
        "one by one: {plain} bytes for {payload} of records"
    );
    assert!(
        dense < payload * 11 / 10,
        "two passes: {dense} bytes for {payload} of records (one by one: {plain})"
    );
}
