/*
 * ha_write_rule.c
 *		The one rule of whether this node may write crawl data.  The write
 *		fence behind every write API call (ha_fence_check), ha_health()'s
 *		"writable" column and the load balancers' checks (ha_endpoint_check)
 *		all ask ha_check_write(), so they cannot disagree; the short text a
 *		load balancer's check gives for each answer is beside it.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "utils/guc.h"

#include "ha_shared.h"
#include "ha_write_rule.h"
#include "ha_guc.h"
#include "ha_witness.h"

void
ha_check_write(HaRole role, int64 term, bool fenced, HaWriteCheck *out)
{
	memset(out, 0, sizeof(*out));
	out->verdict = HA_WRITE_ALLOWED;

	if (RecoveryInProgress())
	{
		out->verdict = HA_WRITE_IN_RECOVERY;
		return;
	}
	if (role != HA_ROLE_PRIMARY)
	{
		out->verdict = HA_WRITE_NOT_PRIMARY;
		return;
	}
	if (fenced)
	{
		out->verdict = HA_WRITE_FENCED;
		return;
	}

	if (ha_shmem_ready())
	{
		HaShared	snap;

		SpinLockAcquire(&ha_shared->mutex);
		memcpy(&snap, ha_shared, sizeof(HaShared));
		SpinLockRelease(&ha_shared->mutex);

		if (snap.max_term_seen > term)
		{
			out->verdict = HA_WRITE_NEWER_TERM;
			out->newer_term = snap.max_term_seen;
			if (snap.peer.role == HA_ROLE_PRIMARY)
				strlcpy(out->newer_primary, snap.peer.name, HA_NAME_LEN);
			return;
		}

		/* a self-fence, or a restarted primary that reached no one yet */
		snap.role = role;
		snap.term = term;
		out->why = ha_write_block_reason(&snap);
		if (out->why != NULL)
		{
			out->verdict = HA_WRITE_BLOCKED;
			return;
		}

		/* after a restart, no write before we know whether the peer moved on */
		if (term > 0 && ha_peer_conninfo != NULL && ha_peer_conninfo[0] != '\0' &&
			(snap.worker_pid == 0 || !snap.first_round_done))
		{
			out->verdict = HA_WRITE_UNCHECKED;
			return;
		}

		/* the server's setting, never the session's: a client can set its own */
		if (snap.server_read_only)
			out->verdict = HA_WRITE_READ_ONLY;
		return;
	}

	{
		const char *reset_ro = GetConfigOption("default_transaction_read_only", true, false);

		if (reset_ro != NULL && strcmp(reset_ro, "on") == 0)
			out->verdict = HA_WRITE_READ_ONLY;
	}
}

char *
ha_write_verdict_text(const HaWriteCheck *check, HaRole role, int64 term, const char *primary_name)
{
	const char *primary = primary_name != NULL && primary_name[0] != '\0' ? primary_name : "unknown";

	switch (check->verdict)
	{
		case HA_WRITE_ALLOWED:
			return psprintf("the writable primary of term " INT64_FORMAT, term);
		case HA_WRITE_IN_RECOVERY:
			return pstrdup("the server is in recovery");
		case HA_WRITE_NOT_PRIMARY:
			/* no role: the worker has not (or could not) read ha_state */
			if (role == HA_ROLE_NONE)
				return pstrdup("this node's role is unknown: the HA worker has not loaded its state");
			if (role == HA_ROLE_WITNESS)
				return psprintf("this node is the witness (term " INT64_FORMAT "); it holds no crawl data", term);
			return psprintf("this node is the %s (term " INT64_FORMAT "); the primary is %s",
							ha_role_name(role), term, primary);
		case HA_WRITE_FENCED:
			return psprintf("this node is fenced (term " INT64_FORMAT "): a switchover or a fence is in progress",
							term);
		case HA_WRITE_NEWER_TERM:
			return psprintf("a newer term " INT64_FORMAT " exists; its primary is %s",
							check->newer_term, check->newer_primary[0] ? check->newer_primary : "unknown");
		case HA_WRITE_BLOCKED:
			return pstrdup(check->why != NULL ? check->why : "writes are blocked");
		case HA_WRITE_UNCHECKED:
			return pstrdup("the HA worker's first check of the peer since its start is pending");
		case HA_WRITE_READ_ONLY:
			return pstrdup("default_transaction_read_only is on");
	}
	/* not reached while the switch names every verdict; the compiler says when one is new */
	return pstrdup("writes refused");
}
