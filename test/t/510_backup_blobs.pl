# crawler-ha backup run backs up the blobs its backup's rows reference, on a
# real pair with agents: images stored through the primary's agent (PUT
# /api/blobs) and recorded with image_record(); a full backup copies each
# blob once (the same content under two URLs is one object), an incremental
# one only the new blobs; the objects and manifests are unreadable without
# the passphrase (an image's bytes are nowhere in the repository, a wrong
# passphrase is refused); verify-blobs reads them all back and finds a
# flipped byte; retention after three full backups (repo1-retention-full=2)
# removes the objects only the expired backups referenced and keeps the
# rest; a blob missing from the store, or whose file there hashes wrong,
# fails the run, naming it, after the others are copied.
use strict;
use warnings;
use Digest::SHA qw(sha256_hex);
use File::Find;
use File::Path qw(make_path);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(ha_pair ha_wait_writable ha_conninfo);
use CrawlerHA::Agent qw(agent_start agent_kill agent_curl);

plan skip_all => 'CRAWLER_HA (the built crawler-ha) is not set' unless $ENV{CRAWLER_HA} && -x $ENV{CRAWLER_HA};
my ($pgbackrest) = grep { -x "$_/pgbackrest" } split /:/, $ENV{PATH};
plan skip_all => 'pgbackrest is not installed (scripts/install-deps installs it)' unless $pgbackrest;

my @agents;
END { eval { agent_kill($_) } for @agents; }

my ($a, $b) = ha_pair(names => [ 'bb_a', 'bb_b' ]);
my $roles = 'CREATE ROLE ops LOGIN IN ROLE crawler_ha_reader; CREATE ROLE opsadmin LOGIN IN ROLE crawler_ha_admin';
$a->safe_psql('postgres', $roles);
$b->safe_psql('postgres', "BEGIN READ WRITE; $roles; COMMIT");

my $dir = PostgreSQL::Test::Utils::tempdir();
my $repo = "$dir/repo";
my $blobdir = "$repo/crawler_ha/blobs";
my $passphrase = join '', map { ('a' .. 'z', 'A' .. 'Z', 0 .. 9)[ int rand 62 ] } 1 .. 48;
my $pass = write_file("$dir/pass", "$passphrase\n", 0600);

sub write_file
{
	my ($path, $text, $mode) = @_;
	open my $f, '>:raw', $path or die "$path: $!";
	print $f $text;
	close $f;
	chmod $mode, $path if defined $mode;
	return $path;
}

sub read_file
{
	my ($path) = @_;
	open my $f, '<:raw', $path or return '';
	local $/;
	my $t = <$f>;
	close $f;
	return $t;
}

sub cli
{
	my ($o, $e) = ('', '');
	IPC::Run::run([ $ENV{CRAWLER_HA}, @_ ], '<', \undef, '>', \$o, '2>', \$e, IPC::Run::timeout(600));
	return ($? >> 8, $o, $e);
}

sub conf { my ($n) = @_; return "$dir/" . $n->name . '/pgbackrest.conf'; }

sub setup_args
{
	my ($n) = @_;
	my $d = "$dir/" . $n->name;
	return ('backup', 'setup', '--node', ha_conninfo($n), '--pgdata', $n->data_dir, '--repo', $repo,
		'--passphrase-file', $pass, '--config', conf($n), '--log-path', "$d/log", '--lock-path', "$d/lock",
		'--spool-path', "$d/spool");
}

my $ap;
sub run_args
{
	my (@more) = @_;
	return ('backup', 'run', '--node', ha_conninfo($a) . ' user=opsadmin', '--config', conf($a), '--store',
		$ap->{store}, @more);
}

# The objects in the repository: { sha256 => path }.
sub objects
{
	my %o;
	for my $f (glob("$blobdir/[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*"))
	{
		$o{ (split m{/}, $f)[-1] } = $f;
	}
	return \%o;
}

my ($rc, $out, $err);

# --- the pair, archiving on, agents beside the nodes ---
cli(setup_args($_)) for ($a, $b);
$_->safe_psql('postgres', 'SELECT ha_pause()') for ($a, $b);
$b->restart;
$a->restart;
$_->safe_psql('postgres', 'SELECT ha_resume()') for ($a, $b);
ok(defined ha_wait_writable($a), 'bb_a writes after its restart');
for my $n ($a, $b)
{
	($rc, $out, $err) = cli(setup_args($n));
	is($rc, 0, 'backup setup on ' . $n->name . ': exit 0') or diag($out . $err);
}
$ap = agent_start($a);
push @agents, $ap, agent_start($b);

my $sid = $a->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://img.test/'])");
my $tmp = "$dir/uploads";
make_path($tmp);

# image($name, $bytes, $ext): stores the bytes through the primary's agent
# and records an image row naming them; returns the sha256.
sub image
{
	my ($name, $bytes, $ext) = @_;
	my $sha = sha256_hex($bytes);
	my $f = write_file("$tmp/$sha.$ext", $bytes);
	my ($code, $body) = agent_curl($ap, '-T', $f, "/api/blobs/$sha.$ext");
	die "PUT $sha.$ext: $code $body" unless $code =~ /^20[01]$/;
	my $path = substr($sha, 0, 2) . '/' . substr($sha, 2, 2) . "/$sha.$ext";
	$a->safe_psql('postgres',
		"SELECT image_record($sid, 'http://img.test/$name', '$sha', '$path', " . length($bytes)
		  . ", 10, 10, '$ext', 'image/$ext')");
	return $sha;
}

# Image-like bytes: a header, a marker a grep can look for, then noise that
# no compressor shrinks (as JPEG, PNG and WebP data is).
my $marker = 'CLEAR-IMAGE-MARKER-' . int(rand(1e9));
sub noise { my ($n, $seed) = @_; srand($seed); return join '', map { chr(int rand 256) } 1 .. $n; }
sub png { my ($seed, $n) = @_; return "\x89PNG\r\n\x1a\n$marker-$seed" . noise($n, $seed); }
my $svg = '<svg xmlns="http://www.w3.org/2000/svg">' . ("<rect x=\"1\" y=\"2\" width=\"3\" height=\"4\"/>$marker\n" x 3000) . '</svg>';

my %sha;
$sha{A} = image('a.png', png(1, 40_000), 'png');
$sha{B} = image('b.png', png(2, 60_000), 'png');
$sha{C} = image('c.png', png(3, 25_000), 'png');
$sha{D} = image('d.svg', $svg, 'svg');
is(image('a-again.png', png(1, 40_000), 'png'), $sha{A}, 'the same content under another URL: the same blob');
my %size = map { $_ => length(read_file("$tmp/$sha{$_}." . ($_ eq 'D' ? 'svg' : 'png'))) } qw(A B C D);

# --- backup 1: every blob once ---
($rc, $out, $err) = cli(run_args('--type', 'full'));
is($rc, 0, 'a full backup with 5 images of 4 blobs: exit 0') or diag($out . $err);
my $read1 = $size{A} + $size{B} + $size{C} + $size{D};
like($out, qr/  blobs: 4 referenced \($read1 bytes\), 0 already in the repository, 4 copied: $read1 bytes read, \d+ bytes written \(1 compressed with zstd\)\n/,
	'... copies 4 objects, reading each blob once; only the SVG is compressed');
like($out, qr{  blob manifest: crawler_ha/blobs/manifests/bb_a/\d{8}-\d{6}F\.json\.enc\n  blob verify: 4 objects written by this run read back and hashed: ok\n},
	'... writes the manifest and reads the objects back');
is_deeply([ sort keys %{ objects() } ], [ sort values %sha ], 'the repository holds exactly the 4 blobs, by sha256');
my ($w1) = $out =~ /bytes read, (\d+) bytes written/;
my $on_disk = 0;
$on_disk += -s $_ for values %{ objects() };
is($on_disk, $w1, '... the bytes written are the objects\' sizes');
cmp_ok(-s objects()->{ $sha{D} }, '<', $size{D} / 5, '... the SVG object is compressed');
cmp_ok(-s objects()->{ $sha{B} }, '>=', $size{B}, '... a PNG one is not (raw, plus header and tag)');
my ($f1) = $a->safe_psql('postgres', "SELECT label FROM ha_backups() ORDER BY id DESC LIMIT 1");
is($a->safe_psql('postgres', "SELECT blob_count || ' ' || blob_bytes || ' ' || blobs_ok || ' ' || blobs_copied || ' ' || blob_manifest FROM ha_backups() WHERE label = '$f1'"),
	"4 $read1 true 4 crawler_ha/blobs/manifests/bb_a/$f1.json.enc", 'ha_backups: 4 blobs, their bytes, copied and verified, the manifest');

# --- backup 2: only the new ones ---
$sha{E} = image('e.png', png(5, 30_000), 'png');
$sha{F} = image('f.png', png(6, 35_000), 'png');
image('b-again.png', png(2, 60_000), 'png');
my $read2 = length(png(5, 30_000)) + length(png(6, 35_000));
($rc, $out, $err) = cli(run_args('--type', 'incr'));
is($rc, 0, 'an incremental backup: exit 0') or diag($out . $err);
like($out, qr/  blobs: 6 referenced \(\d+ bytes\), 4 already in the repository, 2 copied: $read2 bytes read, \d+ bytes written \(0 compressed with zstd\)\n/,
	'... copies only the 2 new blobs');
is(scalar(keys %{ objects() }), 6, 'the repository holds 6 objects');
my ($i1) = $a->safe_psql('postgres', "SELECT label FROM ha_backups() ORDER BY id DESC LIMIT 1");
($rc, $out) = cli('backup', 'list', '--db', ha_conninfo($a) . ' user=ops', '--json');
my @listed = @{ decode_json($out)->{nodes}[0]{backups} };
is_deeply([ map { "$_->{blob_count} $_->{blobs_copied}" } @listed ], [ '4 4', '6 2' ], 'backup list --json: the blob counts of both');

# --- encryption ---
my @hits;
find(sub { push @hits, $File::Find::name if -f $_ && index(read_file($_), $marker) >= 0 }, $repo);
is_deeply(\@hits, [], 'no repository file holds an image\'s bytes in clear (nor the SVG, compressed or not)');
unlike(read_file("$blobdir/key.json"), qr/\Q$passphrase\E/, 'key.json does not hold the passphrase');
like(read_file("$blobdir/key.json"), qr/"kdf": "pbkdf2-hmac-sha256".*"salt": "[0-9a-f]{64}"/s, '... it holds the salt and the KDF');
($rc, $out, $err) = cli('backup', 'verify-blobs', '--config', conf($a));
is($rc, 0, 'verify-blobs: exit 0') or diag($out . $err);
like($out, qr/^verify-blobs: 2 manifests, 6 objects read \(\d+ bytes decrypted and hashed\): ok$/m, '... every object read back');
my $wrong = "$dir/wrong";
make_path("$wrong/conf.d");
write_file("$wrong/pgbackrest.conf", read_file(conf($a)), 0600);
write_file("$wrong/conf.d/crawler_ha-cipher.conf", "[global]\nrepo1-cipher-pass=not-the-passphrase-0123456789\n", 0600);
($rc, $out, $err) = cli('backup', 'verify-blobs', '--config', "$wrong/pgbackrest.conf");
is($rc, 1, 'verify-blobs with a wrong passphrase: exit 1');
like($err, qr/the passphrase does not open this repository's blobs/, '... refused: ' . $err);

# --- a flipped byte ---
my $victim = objects()->{ $sha{B} };
my $orig = read_file($victim);
my $bad = $orig;
substr($bad, 1000, 1) = chr(ord(substr($bad, 1000, 1)) ^ 0x01);
write_file($victim, $bad);
($rc, $out, $err) = cli('backup', 'verify-blobs', '--config', conf($a));
is($rc, 1, 'verify-blobs after a byte of an object was flipped: exit 1');
like($err, qr/blob $sha{B}: corrupt: authentication failed/, '... naming the object: ' . $err);
($rc, $out, $err) = cli('backup', 'verify-blobs', '--config', conf($a), '--stanza', 'bb_a', '--label', $f1);
is($rc, 1, 'verify-blobs of the first backup\'s manifest: exit 1 too');
like($out, qr/^verify-blobs: 1 manifests, 4 objects read/m, '... its 4 objects only');
write_file($victim, $orig);
($rc, $out, $err) = cli('backup', 'verify-blobs', '--config', conf($a));
is($rc, 0, '... and 0 once the object is whole again');

# --- retention: the third full backup expires the first and its incremental one ---
$a->safe_psql('postgres', "SELECT image_delete(id) FROM images WHERE sha256 = '$sha{C}'");
($rc, $out, $err) = cli(run_args('--type', 'full'));
is($rc, 0, 'a second full backup, without C\'s image: exit 0') or diag($out . $err);
like($out, qr/  blobs: 5 referenced .*, 5 already in the repository, 0 copied: 0 bytes read/, '... copies nothing');
like($out, qr/  blob retention: removed 0 objects \(0 bytes\) and 0 manifests of expired backups; kept 6 objects for 3 manifests\n/,
	'... and removes nothing: C is still the first backups\'');
($rc, $out, $err) = cli(run_args('--type', 'full'));
is($rc, 0, 'a third full backup: exit 0') or diag($out . $err);
like($out, qr/  blob retention: removed 1 objects \(\d+ bytes\) and 2 manifests of expired backups; kept 5 objects for 2 manifests\n/,
	'... removes the one object and the two manifests of the expired backups: ' . (grep { /retention/ } split /\n/, $out)[0]);
ok(!exists objects()->{ $sha{C} }, 'C, referenced only by the expired backups, is gone');
is_deeply([ sort keys %{ objects() } ], [ sort map { $sha{$_} } qw(A B D E F) ], '... every other object is kept');
ok(!-e "$blobdir/manifests/bb_a/$f1.json.enc" && !-e "$blobdir/manifests/bb_a/$i1.json.enc", '... the expired manifests are gone');
is($a->safe_psql('postgres', 'SELECT count(*) FROM ha_backups() WHERE expired_at IS NULL'), '2', 'ha_backups: two kept');
($rc, $out, $err) = cli('backup', 'expire-blobs', '--config', conf($a));
is($rc, 0, 'expire-blobs by hand: exit 0') or diag($err);
like($out, qr/^expire-blobs: removed 0 objects \(0 bytes\) and 0 manifests of expired backups; kept 5 objects for 2 manifests$/m, '... nothing more to remove');
($rc, $out, $err) = cli('backup', 'verify-blobs', '--config', conf($a));
is($rc, 0, 'verify-blobs after retention: exit 0 (no kept manifest lacks an object)') or diag($err);

# --- a blob missing from the store, and one damaged there ---
# The agents go first: their file sync and scrub would repair both from the
# peer (as they should), and the backup reads the store's directory alone.
$sha{G} = image('g.png', png(7, 20_000), 'png');
$sha{H} = image('h.png', png(8, 20_000), 'png');
$sha{I} = image('i.png', png(9, 20_000), 'png');
agent_kill($_) for @agents;
@agents = ();
sub in_store { my ($s, $ext) = @_; return $ap->{store} . '/' . substr($s, 0, 2) . '/' . substr($s, 2, 2) . "/$s.$ext"; }
unlink(in_store($sha{G}, 'png')) or die $!;
write_file(in_store($sha{I}, 'png'), png(10, 20_000));
($rc, $out, $err) = cli(run_args('--type', 'incr'));
is($rc, 1, 'a backup whose rows reference a blob missing from the store and one damaged there: exit 1');
like($err, qr{blob $sha{G} \(\S+/$sha{G}\.png\) is not in the store \S+: not backed up}, '... naming the missing one');
like($err, qr{blob $sha{I}: the store's file \S+ hashes to [0-9a-f]{64}, not to its name \(damaged in the store\): not backed up},
	'... and the damaged one, saying why');
like($out, qr/  blobs: 8 referenced .*, 5 already in the repository, 1 copied: /, '... after copying the other new one');
ok(exists objects()->{ $sha{H} } && !exists objects()->{ $sha{G} } && !exists objects()->{ $sha{I} },
	'... which alone of the three is in the repository');
is(scalar(grep { m{/\.tmp-} } glob("$blobdir/*/*/.tmp-*")), 0, '... and no temporary file is left');
like($out, qr/  check: the restore point's WAL is archived\n/, '... the database backup itself is made and checked');
is($a->safe_psql('postgres', "SELECT blobs_ok || ' ' || (blobs_detail LIKE '%$sha{G}%$sha{I}%' OR blobs_detail LIKE '%$sha{I}%$sha{G}%') FROM ha_backups() ORDER BY id DESC LIMIT 1"),
	'false true', 'ha_backups: blobs not ok, saying which');
is($a->safe_psql('postgres', "SELECT detail ->> 'ok' || ' ' || (detail ->> 'step') FROM ha_events WHERE kind = 'backup' ORDER BY id DESC LIMIT 1"),
	'false blobs', '... and a failed backup event at step blobs');
($rc, $out, $err) = cli('backup', 'verify-blobs', '--config', conf($a));
is($rc, 1, 'verify-blobs: the newest manifest names missing objects: exit 1');
like($err, qr/blob $sha{G}: missing from the repository/, '... saying so');

done_testing();
