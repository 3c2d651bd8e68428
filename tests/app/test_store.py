"""handler/store.py's InMemoryStore: the claims, replays, first attempts and fencing tokens
handler/app.py relies on, and what it forgets first when full."""

from datetime import UTC, datetime, timedelta

from handler.store import Claim, InMemoryStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def dead_lettered(store: InMemoryStore, key: str, letter: str = "") -> None:
    assert store.claim(key, letter=letter) is Claim.ACQUIRED
    store.complete(key, dead_lettered=True)


def test_a_claim_is_held_until_released_or_completed() -> None:
    store = InMemoryStore()
    assert store.claim("k") is Claim.ACQUIRED
    assert store.claim("k") is Claim.IN_PROGRESS
    assert store.claim("k", replay=True) is Claim.IN_PROGRESS
    store.release("k")
    assert store.claim("k") is Claim.ACQUIRED
    store.complete("k")
    assert store.claim("k") is Claim.DONE
    assert store.claim("k", replay=True) is Claim.DONE  # processed: a replay is a duplicate
    assert store.claim("other") is Claim.ACQUIRED  # keys are independent


def test_a_dead_lettered_task_is_done_for_its_deliveries_and_claimable_once_by_a_replay() -> None:
    store = InMemoryStore()
    dead_lettered(store, "k")
    assert store.claim("k") is Claim.DONE
    assert store.claim("k", replay=True) is Claim.ACQUIRED
    # While the replay runs, and after it is handed back: still dead-lettered for every
    # delivery but a replay.
    assert store.claim("k") is Claim.IN_PROGRESS
    store.release("k")
    assert store.claim("k") is Claim.DONE
    assert store.claim("k", replay=True) is Claim.ACQUIRED
    store.complete("k")
    assert store.claim("k", replay=True) is Claim.DONE
    assert store.claim("k") is Claim.DONE


def test_a_replay_of_a_task_never_dead_lettered_is_not_its_replay() -> None:
    store = InMemoryStore()
    assert store.claim("k", replay=True) is Claim.NOT_DEAD_LETTERED  # never seen
    assert store.claim("k") is Claim.ACQUIRED
    store.release("k")  # handed back for a retry: not dead-lettered
    assert store.claim("k", replay=True) is Claim.NOT_DEAD_LETTERED
    assert store.claim("k") is Claim.ACQUIRED  # the refused replay took nothing


def test_a_replay_must_carry_the_letter_of_the_task_s_first_claim() -> None:
    store = InMemoryStore()
    dead_lettered(store, "k", letter="digest-1")
    assert store.claim("k", replay=True, letter="digest-2") is Claim.NOT_DEAD_LETTERED
    assert store.claim("k", replay=True) is Claim.NOT_DEAD_LETTERED
    assert store.claim("k", replay=True, letter="digest-1") is Claim.ACQUIRED


def test_a_record_claimed_without_a_letter_takes_any_replay() -> None:
    store = InMemoryStore()
    dead_lettered(store, "k")
    assert store.claim("k", replay=True, letter="digest-9") is Claim.ACQUIRED


def test_the_first_claim_s_letter_is_kept_whatever_later_claims_give() -> None:
    store = InMemoryStore()
    assert store.claim("k", letter="digest-1") is Claim.ACQUIRED
    store.release("k")
    dead_lettered(store, "k", letter="digest-2")
    assert store.claim("k", replay=True, letter="digest-2") is Claim.NOT_DEAD_LETTERED
    assert store.claim("k", replay=True, letter="digest-1") is Claim.ACQUIRED


def test_a_dead_letter_never_overwrites_a_processed_record() -> None:
    store = InMemoryStore()
    assert store.claim("k") is Claim.ACQUIRED
    store.complete("k")
    store.complete("k", dead_lettered=True)  # a holder whose claim lapsed, failing late
    assert store.claim("k", replay=True) is Claim.DONE


def test_the_first_attempt_is_the_first_claim_s_until_the_task_is_settled() -> None:
    store = InMemoryStore()
    assert store.first_attempt("k") is None
    assert store.claim("k", first_attempt_at=T0) is Claim.ACQUIRED
    store.release("k")
    assert store.claim("k", first_attempt_at=T0 + timedelta(minutes=1)) is Claim.ACQUIRED
    assert store.first_attempt("k") == T0
    store.release("k")
    assert store.first_attempt("k") == T0  # released: the task goes on
    assert store.claim("k") is Claim.ACQUIRED
    store.complete("k", dead_lettered=True)
    assert store.first_attempt("k") is None
    # A replay is a task begun anew.
    later = T0 + timedelta(hours=2)
    assert store.claim("k", replay=True, first_attempt_at=later) is Claim.ACQUIRED
    assert store.first_attempt("k") == later


def test_an_unknown_first_attempt_stays_unknown() -> None:
    store = InMemoryStore()
    assert store.claim("k") is Claim.ACQUIRED  # a retry whose first attempt was elsewhere
    assert store.first_attempt("k") is None


def test_fencing_tokens_grow_with_every_claim_and_belong_to_the_holder() -> None:
    store = InMemoryStore()
    assert store.fencing_token("k") is None
    assert store.claim("k") is Claim.ACQUIRED
    assert store.fencing_token("k") == 1
    assert store.claim("k") is Claim.IN_PROGRESS  # not a claim: no new token
    assert store.fencing_token("k") == 1
    store.release("k")
    assert store.fencing_token("k") is None  # nobody holds it
    assert store.claim("k") is Claim.ACQUIRED
    assert store.fencing_token("k") == 2
    assert store.claim("other") is Claim.ACQUIRED
    assert (store.fencing_token("k"), store.fencing_token("other")) == (2, 1)
    store.complete("k", dead_lettered=True)
    assert store.claim("k", replay=True) is Claim.ACQUIRED
    assert store.fencing_token("k") == 3


def test_a_full_store_forgets_the_oldest_settled_task_first() -> None:
    store = InMemoryStore(capacity=2)
    for key in ("a", "b"):
        assert store.claim(key) is Claim.ACQUIRED
        store.complete(key)
    assert store.claim("a") is Claim.DONE
    assert store.claim("c") is Claim.ACQUIRED
    store.complete("c")
    assert store.claim("a") is Claim.ACQUIRED  # forgotten: a very late redelivery runs
    assert (store.claim("b"), store.claim("c")) == (Claim.DONE, Claim.DONE)


def test_a_full_store_forgets_the_oldest_first_attempt_first() -> None:
    store = InMemoryStore(capacity=2)
    for minute, key in enumerate(("a", "b", "c")):
        assert store.claim(key, first_attempt_at=T0 + timedelta(minutes=minute)) is Claim.ACQUIRED
    assert store.first_attempt("a") is None
    assert store.first_attempt("b") == T0 + timedelta(minutes=1)
    assert store.first_attempt("c") == T0 + timedelta(minutes=2)


def test_a_full_store_forgets_the_least_recently_claimed_generation_and_letter() -> None:
    store = InMemoryStore(capacity=2)
    for key in ("a", "b"):
        assert store.claim(key, letter=f"digest-{key}") is Claim.ACQUIRED
        store.release(key)
    assert store.claim("a", letter="digest-a") is Claim.ACQUIRED  # a is now the most recent
    assert store.claim("c") is Claim.ACQUIRED  # b's generation and letter go
    assert (store.fencing_token("a"), store.fencing_token("c")) == (2, 1)
    store.complete("a", dead_lettered=True)
    assert store.claim("a", replay=True, letter="other") is Claim.NOT_DEAD_LETTERED  # kept
    dead_lettered(store, "b", letter="digest-b2")
    assert store.fencing_token("b") is None
    # b starts over: generation 1, and its letter is the first claim's since.
    assert store.claim("b", replay=True, letter="digest-b") is Claim.NOT_DEAD_LETTERED
    assert store.claim("b", replay=True, letter="digest-b2") is Claim.ACQUIRED
    assert store.fencing_token("b") == 2


def test_calls_with_a_timeout_answer_at_once() -> None:
    store = InMemoryStore()
    assert store.claim("k", timeout=0.001, holder="t attempt 1 on h/1") is Claim.ACQUIRED
    assert store.first_attempt("k", timeout=0.001) is None
    store.hand_over("k", 12345)  # claims are the process's: still held
    assert store.claim("k") is Claim.IN_PROGRESS
    assert store.fencing_token("k") == 1
    store.complete("k", timeout=0.001)
    assert store.claim("k") is Claim.DONE


def test_a_replayed_task_the_full_store_forgot_is_claimed_anew() -> None:
    store = InMemoryStore(capacity=1)
    dead_lettered(store, "k")
    assert store.claim("k", replay=True) is Claim.ACQUIRED
    store.complete("k", dead_lettered=True)  # the replay failed for good too
    assert store.claim("other") is Claim.ACQUIRED
    store.complete("other")  # k is forgotten: nothing of its replay is left either
    assert store.claim("k") is Claim.ACQUIRED
