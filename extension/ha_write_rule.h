/*
 * ha_write_rule.h
 *		The one rule of whether this node may write crawl data (ha_write_rule.c).
 */
#ifndef HA_WRITE_RULE_H
#define HA_WRITE_RULE_H

#include "ha_role.h"
#include "ha_shared.h"

/* Whether this node may write crawl data, and if not, why (ha_write_rule.c). */
typedef enum HaWriteVerdict
{
	HA_WRITE_ALLOWED,
	HA_WRITE_IN_RECOVERY,		/* the server is a physical standby */
	HA_WRITE_NOT_PRIMARY,		/* a standby or a witness */
	HA_WRITE_FENCED,			/* a switchover or a fence is in progress */
	HA_WRITE_NEWER_TERM,		/* a newer term exists: this node must rejoin */
	HA_WRITE_BLOCKED,			/* self-fenced, or no contact since its start */
	HA_WRITE_UNCHECKED,			/* restarted: its first check of the peer is pending */
	HA_WRITE_READ_ONLY			/* the server's default_transaction_read_only is on */
} HaWriteVerdict;

typedef struct HaWriteCheck
{
	HaWriteVerdict verdict;
	const char *why;			/* HA_WRITE_BLOCKED: the reason */
	int64		newer_term;		/* HA_WRITE_NEWER_TERM: the newest term heard of */
	char		newer_primary[HA_NAME_LEN];	/* its primary, "" when unknown */
} HaWriteCheck;

/*
 * The rule, for a node in `role` of `term`, `fenced` or not (its ha_state
 * row, or shared memory's copy of it), with what shared memory knows of the
 * peer, the witness and the server's settings.  Raises nothing; fills `out`.
 */
extern void ha_check_write(HaRole role, int64 term, bool fenced, HaWriteCheck *out);

/*
 * What `check` (ha_check_write()'s answer for a node in `role` of `term`)
 * says, as one short sentence without a final period: why this node takes no
 * writes, or that it is the writable primary.  `primary_name` is the primary
 * this node's state names ("" or NULL when none).  For a load balancer's
 * check and its log; raises nothing; the text is palloc'd.
 */
extern char *ha_write_verdict_text(const HaWriteCheck *check, HaRole role, int64 term,
								   const char *primary_name);

#endif							/* HA_WRITE_RULE_H */
