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
 * not come back.  So crawl_start() only asks for the HA worker to be woken
 * at its commit (ha_wake_at_commit()); the worker then sends the
 * notification in a transaction of its own that writes nothing else,
 * commits locally (the notification carries no data to lose) and gives up
 * on the lock after a short wait.
 */
#include "postgres.h"

#include "fmgr.h"

#include "ha_announce.h"
#include "ha_shared.h"
#include "ha_step.h"
#include "ha_wake.h"

PG_FUNCTION_INFO_V1(crawl_announce_work);

/* the longest the HA worker waits for the notification lock */
#define ANNOUNCE_LOCK_TIMEOUT_MS 100

/*
 * crawl_announce_work(): when this transaction commits, the HA worker
 * notifies the channel crawler_ha_work.  Nothing happens on abort.
 */
Datum
crawl_announce_work(PG_FUNCTION_ARGS)
{
	ha_wake_at_commit(HA_WAKE_ANNOUNCE);
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
