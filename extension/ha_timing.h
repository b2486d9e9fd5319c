/*
 * ha_timing.h
 *		The HA worker's fixed waits and intervals, each with its reason.
 *		(What an operator tunes is a setting in ha_guc.c; these are not
 *		worth one.)
 */
#ifndef HA_TIMING_H
#define HA_TIMING_H

/*
 * After a promotion sets synchronous_standby_names and signals a reload:
 * long enough for the postmaster to pass the new value to the walsenders,
 * so the first commits of the new term wait for the standby as promised.
 */
#define HA_SYNC_NAMES_RELOAD_WAIT_MS	200

/*
 * A switchover waits at most this long (or the response timeout, if shorter)
 * for a standby that just subscribed to start streaming before judging it.
 */
#define HA_STANDBY_STREAMING_WAIT_MAX_MS	5000

/*
 * How often a switchover looks again: for the standby to start streaming,
 * and, with writes already fenced, for it to confirm the last LSN (short:
 * every poll is time during which writes are refused).
 */
#define HA_STREAMING_POLL_MS			50
#define HA_FLUSH_POLL_MS				20

/*
 * After a switchover, the new primary's walsender may hold the old slot a
 * moment: it is tried this many times, HA_SLOT_DROP_RETRY_MS apart.
 */
#define HA_SLOT_DROP_TRIES				100
#define HA_SLOT_DROP_RETRY_MS			50

/*
 * How long a demotion or a fence lets writes in flight finish.  They hold
 * ha_state in ROW EXCLUSIVE mode until they end, and the demotion's
 * EXCLUSIVE lock waits for them.
 * A write commits in milliseconds; what is still there after this is a
 * client idle in its transaction, or a commit waiting for a synchronous
 * standby that is gone, and would hold the demotion up for as long as it
 * likes.  Those sessions are ended: the demotion ends every client session
 * a moment later anyway.
 */
#define HA_DEMOTE_GRACE_MS				2000

/*
 * The self-fence waits this long for ha_state: writes in flight hold it,
 * and the client sessions were just ended, so a longer wait means a
 * stuck session; shared memory refuses writes meanwhile, and the fence is
 * persisted on the next try (HA_FENCE_PERSIST_RETRY_MS).
 */
#define HA_SELF_FENCE_LOCK_TIMEOUT_MS	1000

/*
 * A self-fence that could not be written to ha_state yet is tried again
 * this soon: until it is persisted, a restart would forget it.
 */
#define HA_FENCE_PERSIST_RETRY_MS		200

/*
 * A refused rejoin is tried again after 1, 2, 4 ... seconds, at most
 * HA_REJOIN_BACKOFF_MAX_MS apart: the cause (a slot, a busy primary) is
 * often gone in seconds, and a lasting one must not flood the log.
 */
#define HA_REJOIN_BACKOFF_FIRST_MS		1000
#define HA_REJOIN_BACKOFF_MAX_MS		30000

/*
 * While a sync-mode primary has no streaming standby, merges blocked behind
 * commits waiting for it are released this often, and the worker's loop
 * wakes at least every HA_SYNC_WATCH_WAKE_MS to do it and to see the
 * standby return: a merge must not wait seconds for the worker.
 */
#define HA_MERGE_RELEASE_INTERVAL_MS	200
#define HA_SYNC_WATCH_WAKE_MS			250

/*
 * A subscription an error disabled is enabled again at most this often:
 * an error that recurs would otherwise loop enable/fail/alert.
 */
#define HA_SUBSCRIPTION_REENABLE_INTERVAL_MS	30000

#endif							/* HA_TIMING_H */
