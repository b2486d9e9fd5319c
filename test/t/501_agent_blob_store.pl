# The node agent's blob store over HTTP, with the real crawler-ha agent, TLS
# and curl: a good upload, a wrong hash (422, nothing left), a body over the
# limit (413), an upload cut off in the middle (no file; the retry
# succeeds), reads with Range, ETag and If-None-Match, tokens, a full disk
# (507, no partial file, reads still served), and orphan blobs: removed only
# after the grace period, and never while a row on either node needs them.
use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use Digest::SHA qw(sha256_hex);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use CrawlerHA::Test qw(ha_pair new_node);
use CrawlerHA::Agent qw(agent_start agent_stop agent_kill agent_pki agent_curl agent_blob_files agent_wait_log);

my @agents;
END { eval { agent_kill($_) } for @agents; }

plan skip_all => 'CRAWLER_HA (the built crawler-ha) is not set' unless $ENV{CRAWLER_HA} && -x $ENV{CRAWLER_HA};

my $tmp = tempdir(CLEANUP => 1);
sub put_file { my ($name, $bytes) = @_; open my $f, '>:raw', "$tmp/$name" or die $!; print $f $bytes; close $f; return "$tmp/$name"; }
sub tmp_files { my ($a) = @_; my @f = grep { -f } glob("$a->{store}/.tmp/*"); return scalar @f; }

my ($p, $s) = ha_pair(names => [ 'blob_p', 'blob_s' ], conf => "crawler_ha.replication_mode = 'semi_sync'\n");
# Sweeps every second, with the shortest grace the extension allows (a lease
# can last a day; an unrecorded upload is kept at least that long).
my @sweep = ('--orphan-grace-s', '86401', '--orphan-sweep-s', '1', '--max-blob-bytes', '3000000');
my $ap = agent_start($p, args => \@sweep);
my $as = agent_start($s, args => \@sweep);
push @agents, $ap, $as;
# semi_sync copies to the peer agent that ha_status() names; until an agent
# has read it, an upload is answered without the copy (as the database's
# semi_sync does without a standby).
ok(agent_wait_log($_, qr/file sync: peer agent https/), $_->{node}->name . "'s agent knows its peer") for ($ap, $as);

# --- uploads ---------------------------------------------------------------
my $png = "\x89PNG\r\n\x1a\n" . ('x' x 5000);
my $sha = sha256_hex($png);
my $f = put_file('a.png', $png);
my ($code, $body) = agent_curl($ap, '-T', $f, "/api/blobs/$sha.png");
is($code, '201', 'a good upload is stored (201)') or diag $body;
like($body, qr/"created":\s*true/, 'and says it created the blob');
my $path = $ap->{store} . '/' . substr($sha, 0, 2) . '/' . substr($sha, 2, 2) . "/$sha.png";
ok(-f $path && sha256_hex(PostgreSQL::Test::Utils::slurp_file($path)) eq $sha, 'the file is in the store, ab/cd/<sha256>.png');
ok(-f $as->{store} . '/' . substr($sha, 0, 2) . '/' . substr($sha, 2, 2) . "/$sha.png",
	'semi_sync: the standby\'s agent holds it before the upload is answered');
($code, $body) = agent_curl($ap, '-T', $f, "/api/blobs/$sha.png");
is($code, '200', 'the same upload again answers 200');
like($body, qr/"created":\s*false/, 'without rewriting the blob');

my $bad = put_file('bad.png', $png . 'tampered');
($code, $body) = agent_curl($ap, '-T', $bad, '/api/blobs/' . sha256_hex($png . 'other') . '.png');
is($code, '422', 'a body whose hash differs from its name is refused (422)');
like($body, qr/hash_mismatch/, 'with a stable error code');
is(scalar(keys %{ agent_blob_files($ap) }), 1, 'and leaves no blob');
is(tmp_files($ap), 0, 'and no temporary file');

my $big = put_file('big.bin', 'y' x 3_500_000);
($code, $body) = agent_curl($ap, '-T', $big, '/api/blobs/' . sha256_hex('y' x 3_500_000) . '.bin');
is($code, '413', 'a body over the limit is refused (413)');
($code, $body) = agent_curl($ap, '--no-token', '-T', $f, "/api/blobs/$sha.png");
is($code, '401', 'an upload without the token is refused (401)');
($code, $body) = agent_curl($ap, '--no-token', '-H', 'Authorization: Bearer wrong', '-T', $f, "/api/blobs/$sha.png");
is($code, '401', 'an upload with a wrong token is refused (401)');
for my $name ('../../etc/passwd', ('a' x 63) . '.png', ('A' x 64) . '.png', "$sha.PNG", "$sha." . ('x' x 17), "$sha.p%00ng")
{
	($code, $body) = agent_curl($ap, '-T', $f, "/api/blobs/$name");
	ok($code =~ /^4\d\d$/ && $code ne '401', "a hostile name is refused with a 4xx ($code): " . substr($name, 0, 30));
}

# An upload cut off in the middle: curl streams half the body, then dies.
my $payload = 'z' x 2_000_000;
my $psha = sha256_hex($payload);
my $in = substr($payload, 0, 1_000_000);
my $pki = agent_pki();
my $cut = IPC::Run::start([ 'curl', '-sS', '--cacert', $pki->{ca}, '-H', "Authorization: Bearer $pki->{token}",
		'-T', '-', "$ap->{url}/api/blobs/$psha.bin" ], '<', \$in, '>', \my $cut_out, '2>', \my $cut_err);
$cut->pump while length $in;
Time::HiRes::sleep(0.5);
$cut->kill_kill;
my $t0 = time;
Time::HiRes::sleep(0.2) while tmp_files($ap) && time - $t0 < 40;
is(tmp_files($ap), 0, 'an upload cut off in the middle leaves no temporary file');
ok(!agent_blob_files($ap)->{$psha}, 'and no blob');
my $pf = put_file('payload.bin', $payload);
($code, $body) = agent_curl($ap, '-T', $pf, "/api/blobs/$psha.bin");
is($code, '201', 'the retried upload succeeds');

# --- reads -----------------------------------------------------------------
my ($hcode, $headers) = agent_curl($ap, '--no-token', '-I', "/api/blobs/$sha");
is($hcode, '200', 'HEAD answers 200 (reads need no token by default)');
like($headers, qr/^etag: "$sha"\r?$/mi, 'ETag is the hash');
like($headers, qr/^cache-control:.*immutable/mi, 'immutable caching');
like($headers, qr/^content-type: image\/png\r?$/mi, 'the content type follows the extension');
like($headers, qr/^content-length: 5008\r?$/mi, 'the length');
($code, $body) = agent_curl($ap, '--no-token', '-r', '100-199', "/api/blobs/$sha");
is($code, '206', 'a Range read answers 206');
is($body, substr($png, 100, 100), 'with exactly those bytes');
($code, $body) = agent_curl($ap, '--no-token', '-H', 'Range: bytes=-8', "/api/blobs/$sha");
is($body, substr($png, -8), 'a suffix range');
($code, $body) = agent_curl($ap, '--no-token', '-H', 'Range: bytes=999999-', "/api/blobs/$sha");
is($code, '416', 'a range past the end answers 416');
($code, $body) = agent_curl($ap, '--no-token', '-H', "If-None-Match: \"$sha\"", "/api/blobs/$sha");
is($code, '304', 'If-None-Match with the hash answers 304');
($code, $body) = agent_curl($ap, '--no-token', '/api/blobs/' . ('0' x 64));
is($code, '404', 'an absent blob answers 404');
like($body, qr/"error"/, 'with a JSON error');
($code, $body) = agent_curl($ap, '--no-token', '-X', 'DELETE', "/api/blobs/$sha");
is($code, '405', 'DELETE is not a blob method (405)');
# Several blobs in one answer, as a catching-up peer asks for small ones.
my $absent = 'f' x 64;
($code, $body) = agent_curl($ap, '--no-token', '-H', 'Content-Type: application/json', '--data-binary',
	qq({"blobs":["$sha.png","$absent","$sha"]}), '/api/blobs/bundle');
is($code, '200', 'a bundle of held and absent blobs answers 200 (a read: no token needed by default)');
ok($body eq "$sha 5008\n$png$absent -\n$sha 5008\n$png",
	'each held blob follows its line, the absent one is named absent, in the order asked');
($code, $body) = agent_curl($ap, '--data-binary', '{"blobs":["../../etc/passwd"]}', '/api/blobs/bundle');
is($code, '400', 'a hostile name in a bundle is refused (400)');
like($body, qr/"bad_query"/, 'with a stable error code');

# --- a full disk -----------------------------------------------------------
SKIP:
{
	my $small = $ENV{CRAWLER_HA_SMALL_FS};
	skip 'no small file system to fill (CRAWLER_HA_SMALL_FS: make check mounts one as root)', 6
	  unless $small && -d $small && -w $small;
	# A lone primary whose agent's store is a 4 MiB tmpfs.
	my $solo = new_node('blob_full');
	$solo->safe_psql('postgres', "SELECT ha_setup('primary')");
	$solo->poll_query_until('postgres', "SELECT role = 'primary' FROM ha_health()")
	  or die 'the lone node did not become primary';
	my $fa = agent_start($solo, store => "$small/store", args => \@sweep);
	push @agents, $fa;
	# Uploads go to the primary only: wait until the agent has read its role.
	agent_wait_log($fa, qr/file sync: this node is primary/) or die 'the agent did not learn its role';
	my $one = 'p' x 2_500_000;
	my $onef = put_file('one.bin', $one);
	($code, $body) = agent_curl($fa, '-T', $onef, '/api/blobs/' . sha256_hex($one) . '.bin');
	is($code, '201', 'a blob that fits is stored');
	my $two = 'q' x 2_500_000;
	my $twof = put_file('two.bin', $two);
	($code, $body) = agent_curl($fa, '-T', $twof, '/api/blobs/' . sha256_hex($two) . '.bin');
	is($code, '507', 'a blob that does not fit: 507');
	like($body, qr/store_full/, 'with a clear error');
	ok(!agent_blob_files($fa)->{ sha256_hex($two) }, 'no partial blob');
	is(tmp_files($fa), 0, 'no temporary file');
	($code, $body) = agent_curl($fa, '--no-token', '-o', '/dev/null', '/api/blobs/' . sha256_hex($one));
	like($code, qr/^2/, 'reads are still served');
	agent_stop($fa);
	$solo->stop;
}

# --- orphans ---------------------------------------------------------------
# $psha has no row on either node: an orphan, but a fresh upload.
sleep 3;
ok(agent_blob_files($ap)->{$psha}, 'an unrecorded upload is kept during the grace period (3 sweeps)');
# Time passes (as the superuser, in the agent's own bookkeeping).
my $age = "now() - interval '2 days'";
$_->safe_psql('postgres', "BEGIN READ WRITE; UPDATE ha_blobs SET last_put_at = $age, stored_at = $age, "
	  . "unreferenced_since = $age WHERE sha256 = '$psha'; COMMIT") for ($p, $s);
ok($p->poll_query_until('postgres', "SELECT count(*) = 0 FROM ha_blobs WHERE sha256 = '$psha'"),
	'after the grace period the orphan is removed from the bookkeeping');
$t0 = time;
Time::HiRes::sleep(0.2) while agent_blob_files($ap)->{$psha} && time - $t0 < 30;
ok(!agent_blob_files($ap)->{$psha}, 'and from the disk');

# A blob only the peer's rows reference is never removed: the standby stops
# replicating, the primary records a row for $sha, the standby's copy ages.
$s->safe_psql('postgres', 'BEGIN READ WRITE; ALTER SUBSCRIPTION crawler_ha_sub DISABLE; COMMIT');
my $sid = $p->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://example.test/'])");
$p->safe_psql('postgres', "SELECT image_record($sid, 'http://example.test/a.png', '$sha', "
	  . "'" . substr($sha, 0, 2) . '/' . substr($sha, 2, 2) . "/$sha.png', 5008, 1, 1, 'png', 'image/png')");
$s->safe_psql('postgres', "BEGIN READ WRITE; UPDATE ha_blobs SET last_put_at = $age, stored_at = $age, "
	  . "unreferenced_since = $age WHERE sha256 = '$sha'; COMMIT");
sleep 4;
ok(agent_blob_files($as)->{$sha}, 'a blob the peer\'s rows reference is kept, however old');
is($s->safe_psql('postgres', "SELECT count(*) FROM ha_blobs WHERE sha256 = '$sha'"), '1', 'and stays in the bookkeeping');
$s->safe_psql('postgres', 'BEGIN READ WRITE; ALTER SUBSCRIPTION crawler_ha_sub ENABLE; COMMIT');

# The scrub leaves out blobs hashed less than scrub_min_age_s (a day by
# default) ago: after a restart, of the primary's blobs, all hashed when
# they were stored, only the one marked verified two days ago is re-hashed.
my $fresh = "\x89PNG\r\n\x1a\n" . ('f' x 3000);
($code, $body) = agent_curl($ap, '-T', put_file('fresh.png', $fresh), '/api/blobs/' . sha256_hex($fresh) . '.png');
is($code, '201', 'a fresh blob is stored');
ok($p->poll_query_until('postgres', 'SELECT count(*) > 1 FROM ha_blobs'), 'the primary holds several blobs (uploads are recorded in batches)');
$p->safe_psql('postgres', "BEGIN READ WRITE; UPDATE ha_blobs SET verified_at = now() - interval '2 days' "
	  . "WHERE sha256 = '$sha'; COMMIT");
agent_stop($ap);
$ap = agent_start($p, agent => $ap, args => \@sweep);
ok(agent_wait_log($ap, qr/scrub pass done: 1 blobs/, 30), 'after a restart the scrub re-hashes that blob alone');
is($p->safe_psql('postgres', "SELECT verified_at > now() - interval '1 minute' FROM ha_blobs WHERE sha256 = '$sha'"),
	't', 'and records it as verified now');

agent_stop($_) for ($ap, $as);
$_->stop for ($p, $s);
done_testing();
