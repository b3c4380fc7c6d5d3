//! Hand-made histories with known verdicts.

use verisim_lincheck::{
    CheckError, CheckOptions, Exhaustion, History, HistoryError, KvHistory, KvInput, KvModel,
    KvOutput, Model, Operation, Outcome, Partition, Verdict, check,
};

type H = KvHistory<&'static str, u32>;
type Op = Operation<KvInput<&'static str, u32>, KvOutput<u32>>;

fn put(client: u64, key: &'static str, value: u32, from: u64, to: u64) -> Op {
    Operation::returned(client, KvInput::put(key, value), from, KvOutput::Ok, to)
}

fn get(client: u64, key: &'static str, seen: Option<u32>, from: u64, to: u64) -> Op {
    Operation::returned(client, KvInput::get(key), from, KvOutput::Value(seen), to)
}

fn cas(
    client: u64,
    key: &'static str,
    expected: Option<u32>,
    new: u32,
    swapped: bool,
    from: u64,
    to: u64,
) -> Op {
    Operation::returned(
        client,
        KvInput::cas(key, expected, new),
        from,
        KvOutput::Swapped(swapped),
        to,
    )
}

fn delete(client: u64, key: &'static str, from: u64, to: u64) -> Op {
    Operation::returned(client, KvInput::delete(key), from, KvOutput::Ok, to)
}

fn verdict(ops: Vec<Op>) -> Verdict {
    let history: H = ops.into_iter().collect();
    check(&KvModel::new(), &history, &CheckOptions::default())
        .expect("well-formed history")
        .verdict
}

#[track_caller]
fn assert_linearizable(ops: Vec<Op>) {
    let v = verdict(ops);
    assert!(v.is_linearizable(), "expected linearizable, got {v}");
}

/// Asserts a violation and returns the indices of its minimal core.
#[track_caller]
fn assert_violation(ops: Vec<Op>) -> Vec<usize> {
    let v = verdict(ops);
    let violation = v
        .violation()
        .unwrap_or_else(|| panic!("expected a violation, got {v}"));
    assert!(violation.core_is_minimal, "core not minimised: {violation}");
    violation.core.iter().map(|op| op.index).collect()
}

#[test]
fn empty_history_is_linearizable() {
    assert_linearizable(vec![]);
}

#[test]
fn sequential_puts_and_gets_are_linearizable() {
    assert_linearizable(vec![
        get(1, "x", None, 0, 1),
        put(1, "x", 1, 2, 3),
        get(2, "x", Some(1), 4, 5),
        put(2, "x", 2, 6, 7),
        get(1, "x", Some(2), 8, 9),
        delete(1, "x", 10, 11),
        get(2, "x", None, 12, 13),
    ]);
}

#[test]
fn stale_read_after_a_completed_write_is_caught() {
    let core = assert_violation(vec![
        put(1, "x", 1, 0, 10),
        get(2, "x", Some(1), 5, 15),
        get(3, "x", None, 20, 25),
    ]);
    // Even if the put may have happened at any time (or never), the two reads cannot be
    // ordered: one saw the value, the later one saw none.
    assert_eq!(core, vec![1, 2]);
}

#[test]
fn stale_read_of_an_overwritten_value_is_caught() {
    let core = assert_violation(vec![
        put(1, "x", 1, 0, 10),
        put(1, "x", 2, 20, 30),
        get(2, "x", Some(1), 40, 50),
    ]);
    // Whether or not put 1 took effect, put 2 overwrote it before the read.
    assert_eq!(core, vec![1, 2]);
}

#[test]
fn lost_update_by_two_successful_cas_is_caught() {
    // Both clients read 0 and both swap it: one update is lost.
    let core = assert_violation(vec![
        put(1, "x", 0, 0, 5),
        cas(1, "x", Some(0), 1, true, 10, 20),
        cas(2, "x", Some(0), 2, true, 12, 22),
        get(3, "x", Some(2), 30, 40),
    ]);
    // The two swaps from 0 are the violation, however the put of 0 is placed; the read is not
    // needed.
    assert_eq!(core, vec![1, 2]);
}

#[test]
fn lost_update_by_a_forgotten_put_is_caught() {
    assert_violation(vec![
        put(1, "x", 1, 0, 10),
        put(2, "x", 2, 20, 30),
        get(3, "x", Some(1), 40, 50),
        get(3, "x", Some(2), 60, 70),
    ]);
}

#[test]
fn cas_that_fails_on_the_expected_value_is_caught() {
    let core = assert_violation(vec![
        put(1, "x", 1, 0, 10),
        cas(1, "x", Some(1), 2, false, 20, 30),
    ]);
    assert_eq!(core, vec![0, 1]);
}

#[test]
fn cas_that_swaps_a_different_value_is_caught() {
    let core = assert_violation(vec![
        put(1, "x", 1, 0, 10),
        cas(1, "x", Some(5), 2, true, 20, 30),
    ]);
    // 5 was never written: the swap alone is the violation.
    assert_eq!(core, vec![1]);
}

#[test]
fn cas_on_absent_key_swaps_and_then_fails() {
    assert_linearizable(vec![
        cas(1, "x", None, 1, true, 0, 10),
        cas(2, "x", None, 2, false, 20, 30),
        cas(2, "x", Some(1), 3, true, 40, 50),
        get(1, "x", Some(3), 60, 70),
    ]);
}

#[test]
fn concurrent_cas_where_only_one_wins_is_linearizable() {
    assert_linearizable(vec![
        put(1, "x", 0, 0, 5),
        cas(1, "x", Some(0), 1, false, 10, 20),
        cas(2, "x", Some(0), 2, true, 12, 22),
        get(3, "x", Some(2), 30, 40),
    ]);
}

#[test]
fn read_of_a_value_never_written_is_caught() {
    let core = assert_violation(vec![put(1, "x", 1, 0, 10), get(2, "x", Some(9), 5, 15)]);
    assert_eq!(core, vec![1]);
}

#[test]
fn overlapping_writes_linearizable_in_one_order_only() {
    // put 1 spans everything; put 2 is inside it; the read after put 2 returned sees 1, so
    // the only linearization is put 2, put 1, get.
    assert_linearizable(vec![
        put(1, "x", 1, 0, 100),
        put(2, "x", 2, 10, 20),
        get(3, "x", Some(1), 30, 40),
        get(3, "x", Some(1), 110, 120),
    ]);
    // ... so a later read of 2 has no place.
    assert_violation(vec![
        put(1, "x", 1, 0, 100),
        put(2, "x", 2, 10, 20),
        get(3, "x", Some(1), 30, 40),
        get(3, "x", Some(2), 50, 60),
    ]);
}

#[test]
fn reads_may_see_a_concurrent_write_before_or_after_it() {
    assert_linearizable(vec![
        put(1, "x", 1, 0, 100),
        get(2, "x", None, 10, 20),
        get(2, "x", Some(1), 30, 40),
        get(3, "x", Some(1), 50, 60),
    ]);
    // But never the new value and then the old one.
    let core = assert_violation(vec![
        put(1, "x", 1, 0, 100),
        get(2, "x", Some(1), 10, 20),
        get(3, "x", None, 30, 40),
    ]);
    assert_eq!(core, vec![1, 2]);
}

#[test]
fn touching_intervals_are_concurrent() {
    // The read is invoked at the instant the put returns: either order is allowed.
    assert_linearizable(vec![put(1, "x", 1, 0, 10), get(2, "x", None, 10, 20)]);
}

#[test]
fn unknown_write_may_take_effect() {
    assert_linearizable(vec![
        Operation::unknown(1, KvInput::put("x", 1), 0),
        get(2, "x", Some(1), 10, 20),
        get(2, "x", Some(1), 30, 40),
    ]);
}

#[test]
fn unknown_write_may_never_take_effect() {
    assert_linearizable(vec![
        Operation::unknown(1, KvInput::put("x", 1), 0),
        get(2, "x", None, 10, 20),
        get(2, "x", None, 1_000, 1_010),
    ]);
}

#[test]
fn unknown_write_may_take_effect_late() {
    assert_linearizable(vec![
        Operation::unknown(1, KvInput::put("x", 1), 0),
        get(2, "x", None, 10, 20),
        get(2, "x", Some(1), 30, 40),
    ]);
}

#[test]
fn unknown_write_takes_effect_at_most_once() {
    let core = assert_violation(vec![
        Operation::unknown(1, KvInput::put("x", 1), 0),
        get(2, "x", Some(1), 10, 20),
        get(2, "x", None, 30, 40),
    ]);
    assert_eq!(core, vec![1, 2]);
}

#[test]
fn unknown_write_cannot_take_effect_before_its_invocation() {
    let v = verdict(vec![
        get(2, "x", Some(1), 10, 20),
        Operation::unknown(1, KvInput::put("x", 1), 30),
    ]);
    let violation = v.violation().expect("the read precedes the only write");
    // The write was invoked after the read returned: it plays no part, not even as context.
    let core: Vec<usize> = violation.core.iter().map(|op| op.index).collect();
    assert_eq!(core, vec![0]);
    assert!(violation.context.is_empty());
}

#[test]
fn unknown_cas_may_or_may_not_have_swapped() {
    let unknown_cas = || Operation::unknown(1, KvInput::cas("x", None, 7), 0);
    assert_linearizable(vec![unknown_cas(), get(2, "x", Some(7), 10, 20)]);
    assert_linearizable(vec![unknown_cas(), get(2, "x", None, 10, 20)]);
    // A cas that swapped from "absent" cannot explain a later read of absent after a put.
    assert_violation(vec![
        unknown_cas(),
        put(2, "x", 1, 10, 20),
        get(2, "x", Some(7), 30, 40),
        get(2, "x", Some(1), 50, 60),
    ]);
}

#[test]
fn lost_reads_constrain_nothing() {
    assert_linearizable(vec![
        put(1, "x", 1, 0, 10),
        Operation::unknown(2, KvInput::get("x"), 5),
        get(2, "x", Some(1), 20, 30),
    ]);
}

#[test]
fn refused_operations_are_left_out() {
    let mut h: H = History::new();
    let w = h.invoke(1, KvInput::put("x", 1), 0);
    h.fail(w, 5).unwrap();
    let r = h.invoke(2, KvInput::get("x"), 10);
    h.complete(r, KvOutput::Value(None), 20).unwrap();
    assert!(
        check(&KvModel::new(), &h, &CheckOptions::default())
            .unwrap()
            .verdict
            .is_linearizable()
    );
    // A refused write that was applied anyway is a violation.
    h.operations[1].outcome = Outcome::Returned {
        at: 20,
        output: KvOutput::Value(Some(1)),
    };
    assert!(
        check(&KvModel::new(), &h, &CheckOptions::default())
            .unwrap()
            .verdict
            .is_violation()
    );
}

#[test]
fn the_violation_names_the_key_and_its_operations() {
    let ops = vec![
        put(1, "a", 1, 0, 10),
        get(2, "a", Some(1), 20, 30),
        put(1, "b", 1, 0, 10),
        put(1, "b", 2, 20, 30),
        get(2, "b", Some(1), 40, 50),
        get(3, "c", None, 0, 1),
    ];
    let v = verdict(ops);
    let violation = v.violation().expect("key b has a stale read");
    assert_eq!(violation.partition, "key \"b\"");
    assert_eq!(violation.partition_size, 3);
    // The search linearized put 1 and put 2, then the read of 1 returned and could not follow.
    let prefix: Vec<usize> = violation
        .longest_prefix
        .iter()
        .map(|s| s.op.index)
        .collect();
    assert_eq!(prefix, vec![2, 3]);
    assert_eq!(violation.stuck_state, "Some(2)");
    assert_eq!(violation.blocker.index, 4);
    assert_eq!(violation.candidates.len(), 1);
    assert!(violation.candidates[0].refused_by_model);
    let text = v.to_string();
    assert!(text.contains("key \"b\""), "{text}");
    assert!(text.contains("get(\"b\") -> Some(1)"), "{text}");
    assert!(
        text.contains("#3 client 1 [20, 30] put(\"b\", 2) -> ok"),
        "{text}"
    );
}

/// Many concurrent writes of distinct values and a read of a value nobody wrote: the search must
/// try every order of the writes before it can say no.
fn wide_violation(writers: u32) -> H {
    let mut ops: Vec<Op> = (0..writers)
        .map(|i| put(u64::from(i), "x", i, u64::from(i), 1_000))
        .collect();
    ops.push(get(99, "x", Some(writers + 1), 2_000, 2_001));
    ops.into_iter().collect()
}

#[test]
fn an_exhausted_step_budget_gives_unknown() {
    let h = wide_violation(12);
    let small = CheckOptions::default().with_max_steps(Some(100));
    let report = check(&KvModel::new(), &h, &small).unwrap();
    match report.verdict {
        Verdict::Unknown(incomplete) => {
            assert_eq!(incomplete.reason, Exhaustion::Steps);
            assert_eq!(incomplete.partition, "key \"x\"");
            assert_eq!(incomplete.partitions_checked, 0);
        }
        other => panic!("expected unknown, got {other}"),
    }
    assert!(report.stats.steps <= 101);
    // With the default budget the same history gets its verdict.
    let full = check(&KvModel::new(), &h, &CheckOptions::default()).unwrap();
    assert!(full.verdict.is_violation(), "{}", full.verdict);
}

#[test]
fn an_exhausted_time_budget_gives_unknown() {
    let h = wide_violation(20);
    let options = CheckOptions::default()
        .with_max_steps(None)
        .with_time_limit(Some(std::time::Duration::ZERO));
    let report = check(&KvModel::new(), &h, &options).unwrap();
    match report.verdict {
        Verdict::Unknown(incomplete) => assert_eq!(incomplete.reason, Exhaustion::Time),
        other => panic!("expected unknown, got {other}"),
    }
}

#[test]
fn minimisation_out_of_budget_keeps_the_verdict() {
    let h = wide_violation(10);
    let full = check(&KvModel::new(), &h, &CheckOptions::default()).unwrap();
    let needed = full.stats.steps;
    let search_only = check(
        &KvModel::new(),
        &h,
        &CheckOptions::default().with_minimize(false),
    )
    .unwrap();
    let searched = search_only.stats.steps;
    assert!(searched < needed);
    let tight = CheckOptions::default().with_max_steps(Some(searched + 1));
    let report = check(&KvModel::new(), &h, &tight).unwrap();
    let violation = report.verdict.violation().expect("verdict kept");
    assert!(!violation.core_is_minimal);
    assert_eq!(violation.core.len(), 11);
    let minimal = full.verdict.violation().unwrap();
    assert!(minimal.core_is_minimal);
    assert_eq!(minimal.core.len(), 1);
}

#[test]
fn malformed_histories_are_errors_not_verdicts() {
    let backwards: H = vec![get(1, "x", None, 10, 5)].into_iter().collect();
    assert_eq!(
        check(&KvModel::new(), &backwards, &CheckOptions::default()).unwrap_err(),
        CheckError::History(HistoryError::ReturnBeforeInvoke {
            index: 0,
            invoked_at: 10,
            returned_at: 5
        })
    );
    let wrong_kind: H = vec![
        put(1, "x", 1, 0, 1),
        Operation::returned(1, KvInput::get("x"), 2, KvOutput::Ok, 3),
    ]
    .into_iter()
    .collect();
    assert!(matches!(
        check(&KvModel::new(), &wrong_kind, &CheckOptions::default()),
        Err(CheckError::MalformedOperation { index: 1, .. })
    ));
}

/// A model of a shared counter: `inc` answers the new value. No partitions.
struct Counter;

impl Model for Counter {
    type Input = ();
    type Output = u64;
    type State = u64;
    fn init(&self) -> u64 {
        0
    }
    fn step(&self, state: &u64, _: &(), output: Option<&u64>) -> Option<u64> {
        let next = state + 1;
        output.is_none_or(|&o| o == next).then_some(next)
    }
}

#[test]
fn other_models_plug_in() {
    let ok: History<(), u64> = vec![
        Operation::returned(1, (), 0, 2, 10),
        Operation::returned(2, (), 1, 1, 11),
        Operation::unknown(3, (), 2),
        Operation::returned(1, (), 20, 4, 30),
    ]
    .into_iter()
    .collect();
    let report = check(&Counter, &ok, &CheckOptions::default()).unwrap();
    assert!(report.verdict.is_linearizable(), "{}", report.verdict);
    let bad: History<(), u64> = vec![
        Operation::returned(1, (), 0, 1, 10),
        Operation::returned(2, (), 20, 1, 30),
    ]
    .into_iter()
    .collect();
    let report = check(&Counter, &bad, &CheckOptions::default()).unwrap();
    let text = report.verdict.to_string();
    assert!(text.contains("() -> 1"), "{text}");
}

/// A model whose partition names an operation that does not exist.
struct BrokenPartition;

impl Model for BrokenPartition {
    type Input = ();
    type Output = ();
    type State = ();
    fn init(&self) {}
    fn step(&self, _: &(), _: &(), _: Option<&()>) -> Option<()> {
        Some(())
    }
    fn partition(&self, _: &[Operation<(), ()>]) -> Vec<Partition> {
        vec![Partition {
            label: "broken".into(),
            operations: vec![0, 7],
        }]
    }
}

#[test]
fn a_bad_partition_is_an_error() {
    let h: History<(), ()> = vec![Operation::returned(1, (), 0, (), 1)]
        .into_iter()
        .collect();
    assert_eq!(
        check(&BrokenPartition, &h, &CheckOptions::default()).unwrap_err(),
        CheckError::BadPartition {
            label: "broken".into(),
            index: 7,
            problem: "out of range"
        }
    );
}

/// A model whose partitions overlap.
struct OverlappingPartitions;

impl Model for OverlappingPartitions {
    type Input = ();
    type Output = ();
    type State = ();
    fn init(&self) {}
    fn step(&self, _: &(), _: &(), _: Option<&()>) -> Option<()> {
        Some(())
    }
    fn partition(&self, _: &[Operation<(), ()>]) -> Vec<Partition> {
        ["a", "b"]
            .into_iter()
            .map(|label| Partition {
                label: label.into(),
                operations: vec![0],
            })
            .collect()
    }
}

#[test]
fn an_operation_in_two_partitions_is_an_error() {
    let h: History<(), ()> = vec![Operation::returned(1, (), 0, (), 1)]
        .into_iter()
        .collect();
    assert_eq!(
        check(&OverlappingPartitions, &h, &CheckOptions::default()).unwrap_err(),
        CheckError::BadPartition {
            label: "b".into(),
            index: 0,
            problem: "twice"
        }
    );
}

#[test]
fn an_unknown_verdict_says_which_budget_ran_out_where() {
    let mut ops: Vec<Op> = vec![put(1, "a", 1, 0, 1)];
    ops.extend(wide_violation(12).operations);
    let h: H = ops.into_iter().collect();
    let report = check(
        &KvModel::new(),
        &h,
        &CheckOptions::default().with_max_steps(Some(50)),
    )
    .unwrap();
    assert_eq!(
        report.verdict.to_string(),
        "unknown: the step budget ran out while checking key \"x\" (1 of 2 partitions checked)"
    );
    assert_eq!(report.stats.partitions, 2);
    assert_eq!(report.stats.operations, 14);
    assert_eq!(report.stats.largest_partition, 13);
}
