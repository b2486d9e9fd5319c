/*
 * crawl_site.c
 *		A host's site, by the Public Suffix List: crawl_registrable_domain()
 *		and crawl_public_suffix().  A crawl scoped to its seeds' sites
 *		(scope 'site') takes the registrable domain of each seed's host, and
 *		an allowed domain that is a public suffix ("co.uk", "github.io") is
 *		refused: it would let a crawl wander over every site under it.
 *
 * The list is libpsl's: the newest of its built-in copy and Debian's
 * publicsuffix package (psl_latest()), loaded once per backend.  Only the
 * node that starts a crawl consults it: the session's settings keep the
 * domains it gave, so every node scopes the crawl alike whatever its list.
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <libpsl.h>

#include "fmgr.h"
#include "utils/builtins.h"

#include "crawler_ha.h"

PG_FUNCTION_INFO_V1(crawl_registrable_domain);
PG_FUNCTION_INFO_V1(crawl_public_suffix);

#define HOST_MAX_CHARS	253

static const psl_ctx_t *site_psl = NULL;

/* The list, loaded at the first call of this backend. */
static const psl_ctx_t *
site_list(void)
{
	if (site_psl == NULL)
	{
		/* NULL: Debian's file, when it is newer than the built-in copy */
		site_psl = psl_latest(NULL);
		if (site_psl == NULL)
			site_psl = psl_builtin();
		if (site_psl == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("crawler_ha: could not load the Public Suffix List"),
					 errhint("Install Debian's publicsuffix package.")));
	}
	return site_psl;
}

/*
 * The host name of `arg` (a host, or a host:port as crawl_url_host()
 * returns it) lower-cased into `buf`, or false when it is not a host name
 * the list can judge: empty, too long, not ASCII, an empty label at
 * either end, or an IP address (v4, or v6 in brackets).
 */
static bool
site_host_name(text *arg, char *buf)
{
	int			n = VARSIZE_ANY_EXHDR(arg);
	const char *s = VARDATA_ANY(arg);
	const char *colon;
	struct in_addr v4;

	if (n == 0 || s[0] == '[')
		return false;
	colon = memchr(s, ':', n);
	if (colon != NULL)
		n = colon - s;
	if (n == 0 || n > HOST_MAX_CHARS)
		return false;
	for (int i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c < 0x21 || c > 0x7e)
			return false;		/* hosts are ASCII (IDNs in punycode) */
		buf[i] = (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
	}
	buf[n] = '\0';
	if (buf[n - 1] == '.' || buf[0] == '.')
		return false;
	return inet_pton(AF_INET, buf, &v4) != 1;
}

/*
 * crawl_registrable_domain(host text) RETURNS text
 *		The registrable domain of a host (its public suffix and one label
 *		more: "www.example.co.uk" gives "example.co.uk"), the port left out.
 *		NULL for a host that has none: an IP address, a one-label name such
 *		as "localhost", a public suffix itself.  Strict.
 */
Datum
crawl_registrable_domain(PG_FUNCTION_ARGS)
{
	char		buf[HOST_MAX_CHARS + 1];
	const char *domain;

	if (!site_host_name(PG_GETARG_TEXT_PP(0), buf))
		PG_RETURN_NULL();
	domain = psl_registrable_domain(site_list(), buf);
	if (domain == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(domain));
}

/*
 * crawl_public_suffix(host text) RETURNS boolean
 *		Whether a host name (its port left out) is on the list as a public
 *		suffix ("com", "co.uk", "github.io"), under which anyone can register
 *		a site.  Names the list does not know ("localhost", "example.test")
 *		are not: the list's implicit "*" rule is not applied.  False for IP
 *		addresses.  Strict.
 */
Datum
crawl_public_suffix(PG_FUNCTION_ARGS)
{
	char		buf[HOST_MAX_CHARS + 1];

	if (!site_host_name(PG_GETARG_TEXT_PP(0), buf))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(psl_is_public_suffix2(site_list(), buf, PSL_TYPE_ANY | PSL_TYPE_NO_STAR_RULE) != 0);
}
