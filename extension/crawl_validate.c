/*
 * crawl_validate.c
 *		The write API's rules for URLs and image rows, in C: crawl_url_host_of()
 *		and image_problem().  Each rule is written once, here; the SQL side
 *		(35_validation.sql) declares them, and image_record(), image_check(),
 *		crawl_enqueue() and the merge of an old primary's rows all call them.
 *
 * They were regular expressions in SQL; on every image_record() call their
 * matching was a fifth of the function's time.  These are plain scans over
 * the bytes, with the same answers (the regression and pgTAP suites feed
 * both kinds of input).
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "crawler_ha.h"

PG_FUNCTION_INFO_V1(crawl_url_host_of);
PG_FUNCTION_INFO_V1(crawl_text_ok);
PG_FUNCTION_INFO_V1(image_problem);
PG_FUNCTION_INFO_V1(crawl_blob_address_ok);

#define URL_MAX_CHARS	2048

static bool
is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* A character of a URL's host as the rule allows it: A-Z a-z 0-9 . _ ~ % ! $ & ' ( ) * + , ; = [ ] - */
static bool
is_host_char(char c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("._~%!$&'()*+,;=[]-", c) != NULL;
}

static bool
ends_authority(const char *p, const char *end)
{
	return p == end || *p == '/' || *p == '?' || *p == '#';
}

/*
 * The host (with its port) of an absolute http(s) URL of 1 to 2048
 * printable ASCII characters, as [start, start + *len) of `url`; false for
 * anything else.  The rule: scheme http or https in any case, "://", an
 * optional user part up to an "@" that comes before any of "/?#", a host of
 * the characters is_host_char() allows, an optional ":" and 1 to 5 digits,
 * then the end or one of "/?#".
 */
static bool
url_host_span(const char *url, int n, int *start, int *len)
{
	const char *end = url + n;
	const char *p;
	const char *h;
	int			i;

	if (n < 1 || n > URL_MAX_CHARS)
		return false;
	for (i = 0; i < n; i++)
		if (url[i] < '!' || url[i] > '~')
			return false;

	p = url;
	if (n < 7 || pg_strncasecmp(p, "http", 4) != 0)
		return false;
	p += 4;
	if (*p == 's' || *p == 'S')
		p++;
	if (end - p < 3 || strncmp(p, "://", 3) != 0)
		return false;
	p += 3;

	/* a user part: everything up to an "@" met before "/", "?" or "#" */
	for (h = p; h < end && *h != '/' && *h != '?' && *h != '#' && *h != '@'; h++)
		;
	if (h < end && *h == '@')
		p = h + 1;

	h = p;
	while (p < end && is_host_char(*p))
		p++;
	if (p == h)
		return false;
	if (p < end && *p == ':')
	{
		const char *d = ++p;

		while (p < end && *p >= '0' && *p <= '9' && p - d < 5)
			p++;
		if (p == d)
			return false;
	}
	if (!ends_authority(p, end))
		return false;
	*start = h - url;
	*len = p - h;
	return true;
}

/* crawl_url_host_of(url): the host (with port, lower case) of a valid http(s) URL, else NULL. */
Datum
crawl_url_host_of(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	const char *url = VARDATA_ANY(t);
	int			start,
				len,
				i;
	char	   *host;

	if (!url_host_span(url, VARSIZE_ANY_EXHDR(t), &start, &len))
		PG_RETURN_NULL();
	host = palloc(len + 1);
	for (i = 0; i < len; i++)
		host[i] = pg_ascii_tolower(url[start + i]);
	host[len] = '\0';
	PG_RETURN_TEXT_P(cstring_to_text_with_len(host, len));
}

/*
 * Whether text has no control character (U+0001-U+001F, U+007F-U+009F);
 * counts its characters into *chars.
 */
static bool
text_ok(text *t, int *chars)
{
	const char *s = VARDATA_ANY(t);
	int			n = VARSIZE_ANY_EXHDR(t);
	int			count = 0;

	while (n > 0)
	{
		int			l = pg_mblen(s);
		pg_wchar	w[2];		/* the character and the terminator written after it */
		pg_wchar	c;

		if (l > n)
			l = n;
		(void) pg_mb2wchar_with_len(s, w, l);
		c = w[0];
		if ((c >= 0x01 && c <= 0x1f) || (c >= 0x7f && c <= 0x9f))
			return false;
		s += l;
		n -= l;
		count++;
	}
	if (chars != NULL)
		*chars = count;
	return true;
}

/* crawl_text_ok(value): whether a text has no control characters. */
Datum
crawl_text_ok(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(text_ok(PG_GETARG_TEXT_PP(0), NULL));
}

static bool
sha256_ok(text *t)
{
	const char *s = VARDATA_ANY(t);
	int			i;

	if (VARSIZE_ANY_EXHDR(t) != 64)
		return false;
	for (i = 0; i < 64; i++)
		if (!is_lower_hex(s[i]))
			return false;
	return true;
}

/* file_path is ab/cd/<sha256>.<ext>: the sha256's content address, ext 1-16 of [a-z0-9] */
static bool
file_path_ok(text *path, text *sha)
{
	const char *p = VARDATA_ANY(path);
	const char *h = VARDATA_ANY(sha);
	int			n = VARSIZE_ANY_EXHDR(path);
	int			i;

	if (n < 72 || n > 71 + 16 || VARSIZE_ANY_EXHDR(sha) != 64)
		return false;
	if (p[2] != '/' || p[5] != '/' || p[70] != '.')
		return false;
	if (memcmp(p, h, 2) != 0 || memcmp(p + 3, h + 2, 2) != 0 || memcmp(p + 6, h, 64) != 0)
		return false;
	for (i = 0; i < 70; i++)
		if (i != 2 && i != 5 && !is_lower_hex(p[i]))
			return false;
	for (i = 71; i < n; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9')))
			return false;
	return true;
}

/* format: 1 to 32 of [a-z0-9.+-], starting with a letter or digit */
static bool
format_ok(text *t)
{
	const char *s = VARDATA_ANY(t);
	int			n = VARSIZE_ANY_EXHDR(t);
	int			i;

	if (n < 1 || n > 32)
		return false;
	for (i = 0; i < n; i++)
	{
		char		c = s[i];
		bool		alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (!alnum && (i == 0 || (c != '.' && c != '+' && c != '-')))
			return false;
	}
	return true;
}

static bool
url_ok(text *t)
{
	int			start,
				len;

	return url_host_span(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &start, &len);
}

/*
 * crawl_blob_address_ok(sha256, file_path): whether file_path is the
 * content address of sha256 in the store (ab/cd/<sha256>.<ext>), by the
 * same rule image_problem() applies to an image's own file; a thumbnail's
 * blob is held to it too.  STRICT: NULL in, NULL out.
 */
Datum
crawl_blob_address_ok(PG_FUNCTION_ARGS)
{
	text	   *sha = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(sha256_ok(sha) && file_path_ok(PG_GETARG_TEXT_PP(1), sha));
}

/*
 * image_problem(url, sha256, file_path, file_size, width, height, format,
 * content_type, found_on, http_status, filename): NULL for an image row
 * image_record() could have written, else the first column, in this order,
 * that breaks a rule.  NULL sha256, file_path, file_size or url break their
 * rules; the other columns may be NULL.
 */
Datum
image_problem(PG_FUNCTION_ARGS)
{
	int			chars;

	if (PG_ARGISNULL(1) || !sha256_ok(PG_GETARG_TEXT_PP(1)))
		PG_RETURN_TEXT_P(cstring_to_text("sha256"));
	if (PG_ARGISNULL(2) || !file_path_ok(PG_GETARG_TEXT_PP(2), PG_GETARG_TEXT_PP(1)))
		PG_RETURN_TEXT_P(cstring_to_text("file_path"));
	if (PG_ARGISNULL(3) || PG_GETARG_INT64(3) < 0 || PG_GETARG_INT64(3) > INT64CONST(1099511627776))
		PG_RETURN_TEXT_P(cstring_to_text("file_size"));
	if ((!PG_ARGISNULL(4) && (PG_GETARG_INT32(4) < 0 || PG_GETARG_INT32(4) > 1000000)) ||
		(!PG_ARGISNULL(5) && (PG_GETARG_INT32(5) < 0 || PG_GETARG_INT32(5) > 1000000)))
		PG_RETURN_TEXT_P(cstring_to_text("width or height"));
	if (!PG_ARGISNULL(6) && !format_ok(PG_GETARG_TEXT_PP(6)))
		PG_RETURN_TEXT_P(cstring_to_text("format"));
	if (!PG_ARGISNULL(7) && (!text_ok(PG_GETARG_TEXT_PP(7), &chars) || chars > 255))
		PG_RETURN_TEXT_P(cstring_to_text("content_type"));
	if (!PG_ARGISNULL(10) && (!text_ok(PG_GETARG_TEXT_PP(10), &chars) || chars > 1024))
		PG_RETURN_TEXT_P(cstring_to_text("filename"));
	if (!PG_ARGISNULL(9) && (PG_GETARG_INT32(9) < 100 || PG_GETARG_INT32(9) > 599))
		PG_RETURN_TEXT_P(cstring_to_text("http_status"));
	if (PG_ARGISNULL(0) || !url_ok(PG_GETARG_TEXT_PP(0)))
		PG_RETURN_TEXT_P(cstring_to_text("url"));
	if (!PG_ARGISNULL(8) && !url_ok(PG_GETARG_TEXT_PP(8)))
		PG_RETURN_TEXT_P(cstring_to_text("found_on"));
	PG_RETURN_NULL();
}
