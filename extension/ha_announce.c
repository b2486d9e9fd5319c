/*
 * ha_announce.c
 *		crawl_start() tells the listening crawler workers of a new session,
 *		through the HA worker.
 *
 * A NOTIFY in crawl_start()'s own transaction would hold PostgreSQL's
 * notification lock (one for the whole cluster) from its pre-commit until
 * its commit ends, and so through the wait for a synchronous standby: with
 * the standby away, every notifying transaction behind it, the merge of a
 * rejoining node's tail among them, would wait too, and the standby could
 * not come back.  So crawl_start() only marks the session's commit; the HA
 * worker then sends the notification in a transaction of its own that
 * writes nothing else, commits locally (the notification carries no data
 * to lose) and gives up on the lock after a short wait.
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "storage/latch.h"

#include "ha_announce.h"
#include "ha_shared.h"
#include "ha_step.h"

PG_FUNCTION_INFO_V1(crawl_announce_work);

/* the longest the HA worker waits for the notification lock */
#define ANNOUNCE_LOCK_TIMEOUT_MS 100

static bool announce_at_commit = false;
static bool announce_callback_registered = false;

static void
announce_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		if (announce_at_commit && ha_shmem_ready())
		{
			Latch	   *latch;

			SpinLockAcquire(&ha_shared->mutex);
			ha_shared->work_announced = true;
			latch = ha_shared->worker_latch;
			SpinLockRelease(&ha_shared->mutex);
			if (latch)
				SetLatch(latch);
		}
		announce_at_commit = false;
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		announce_at_commit = false;
}

/*
 * crawl_announce_work(): when this transaction commits, the HA worker
 * notifies the channel crawler_ha_work.  Nothing happens on abort.
 */
Datum
crawl_announce_work(PG_FUNCTION_ARGS)
{
	if (!announce_callback_registered)
	{
		RegisterXactCallback(announce_xact_callback, NULL);
		announce_callback_registered = true;
	}
	announce_at_commit = true;
	PG_RETURN_VOID();
}

static void
announce_step(void *arg)
{
	ha_spi_sql("SET LOCAL synchronous_commit = local");
	ha_spi_sql("SET LOCAL lock_timeout = %d", ANNOUNCE_LOCK_TIMEOUT_MS);
	ha_spi_sql("NOTIFY " HA_WORK_CHANNEL);
}

void
ha_announce_work_if_asked(void)
{
	bool		asked;

	SpinLockAcquire(&ha_shared->mutex);
	asked = ha_shared->work_announced;
	ha_shared->work_announced = false;
	SpinLockRelease(&ha_shared->mutex);
	if (asked)
		(void) ha_step_run("announcing new crawl work", announce_step, NULL, NULL, 0);
}
