/*
 * ha_shmem.c
 *		The shared-memory picture of this node and its peers: written by the
 *		HA worker, read at once by ha_status(), ha_health() and the write
 *		fence in every backend.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "ha_shared.h"
#include "ha_guc.h"

HaShared   *ha_shared = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

#if PG_VERSION_NUM >= 150000
static void
ha_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(HaShared)));
}
#endif

static void
ha_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ha_shared = ShmemInitStruct("crawler_ha", sizeof(HaShared), &found);
	if (!found)
	{
		memset(ha_shared, 0, sizeof(HaShared));
		SpinLockInit(&ha_shared->mutex);
		strlcpy(ha_shared->sync_state, "none", HA_ROLE_LEN);

		/*
		 * The postmaster's value is the server's (no client can set it
		 * here); the worker keeps it current after every reload.
		 */
		{
			const char *ro = GetConfigOption("default_transaction_read_only", true, false);

			ha_shared->server_read_only = ro != NULL && strcmp(ro, "on") == 0;
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/* While the library is preloaded (ha_worker_init()): asks for HaShared, created at startup. */
void
ha_shmem_install_hooks(void)
{
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ha_shmem_request;
#else
	RequestAddinShmemSpace(MAXALIGN(sizeof(HaShared)));
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ha_shmem_startup;
}

/* Whether HaShared exists in this process (only when the library was preloaded). */
bool
ha_shmem_ready(void)
{
	return ha_preloaded && ha_shared != NULL;
}

/* Raises 55000 unless HaShared exists: the SQL functions that read it need it. */
void
ha_require_preload(void)
{
	if (!ha_shmem_ready())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("crawler_ha high availability is not loaded"),
				 errdetail("The HA worker and its shared memory exist only when the library is preloaded."),
				 errhint("Add crawler_ha to shared_preload_libraries (beside pg_cron) and restart the server.")));
}
