/*
 * ha_wake.c
 *		ha_wake_worker(): a change to this node's HA state is seen by the
 *		worker at once, not at its next health check.
 *
 * The functions that change ha_state (ha_setup() and the witness's set-up)
 * call it inside their transaction.  The worker woken then would read the
 * state before the change commits, so the wake is repeated at commit, and
 * the worker serves it with a round of its own (ha_state re-read, the peer
 * checked) rather than only returning to its wait.
 *
 * The same wake at commit serves crawl_start()'s announcement of new work
 * (ha_announce.c): whatever a transaction asks of the worker is asked once it
 * commits, in one callback.
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "storage/latch.h"

#include "ha_shared.h"
#include "ha_wake.h"

PG_FUNCTION_INFO_V1(ha_wake_worker);

/*
 * Wakes the HA worker for `what` (HaWakeFor bits): the flags it serves are
 * set in shared memory, then its latch.  False when no worker runs.
 */
static bool
wake_worker_now(int what)
{
	Latch	   *latch = NULL;

	if (!ha_shmem_ready())
		return false;
	SpinLockAcquire(&ha_shared->mutex);
	latch = ha_shared->worker_latch;
	if (what & HA_WAKE_RELOAD)
		ha_shared->reload_requested = true;
	if (what & HA_WAKE_ANNOUNCE)
		ha_shared->work_announced = true;
	SpinLockRelease(&ha_shared->mutex);
	if (latch)
		SetLatch(latch);
	return latch != NULL;
}

static int	wake_at_commit = 0;		/* HaWakeFor bits for this transaction's commit */
static bool wake_callback_registered = false;

/*
 * A worker woken while the change it must see is still uncommitted reads
 * the old ha_state and publishes it for a whole round (a fresh node's
 * default "primary", right after ha_setup('standby')): it is woken again
 * once the change is visible.  Work to announce is announced only once it
 * is committed.
 */
static void
wake_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		if (wake_at_commit)
			(void) wake_worker_now(wake_at_commit);
		wake_at_commit = 0;
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		wake_at_commit = 0;
}

void
ha_wake_at_commit(int what)
{
	if (!wake_callback_registered)
	{
		RegisterXactCallback(wake_xact_callback, NULL);
		wake_callback_registered = true;
	}
	wake_at_commit |= what;
}

/*
 * ha_wake_worker(): wakes the HA worker now and again when this transaction
 * commits, so that it re-reads ha_state with this transaction's changes.
 * False when no worker runs.
 */
Datum
ha_wake_worker(PG_FUNCTION_ARGS)
{
	ha_wake_at_commit(HA_WAKE_RELOAD);
	PG_RETURN_BOOL(wake_worker_now(HA_WAKE_RELOAD));
}
