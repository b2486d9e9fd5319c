# bench/backup/backup.pl: what backing up one node (its database and the
# image files its rows name) with `crawler-ha backup run` costs, against
# the usual tools measured in the same run. Run through bench/backup/run.
#
# The data: one node (a primary without a standby), set up for backups
# (`crawler-ha backup setup`, the restart archive_mode needs, setup again)
# before anything is written, so that its WAL is archived as in production.
# A generated site of BACKUP_IMAGES images (PNGs of noise pixels, as
# incompressible as photographs, 3 % SVG drawings, which compress; sizes
# log-normal around BACKUP_MEAN_KB KiB, 3 KiB to 1 MiB) on 50 images a page,
# served by nginx on loopback, crawled by crawler-worker storing to a local
# directory: the rows (sessions, hosts, frontier, images) are the write
# API's own and the files are in the store layout the agent keeps
# (ab/cd/<sha256>.<ext>), which is what `backup run --store` reads.
#
#  a. Full backup, BACKUP_ROUNDS rounds, the steps of a round in a rotating
#     order: `crawler-ha backup run --type full` with an empty blob
#     repository (the objects and manifests of the previous round removed:
#     every blob copied, as the first backup of a store); pg_basebackup -Ft
#     -z -Xs -c fast, and uncompressed (-Ft -Xs -c fast); pg_dump -Fc;
#     rsync -a of the store into an empty directory (then sync -f of the
#     copy, timed apart). Ratios of the totals: crawler-ha / (database peer
#     + rsync -a).
#  b. Incremental backup: each round, a crawl of a new site of
#     BACKUP_INCR_PCT % more images (not timed), then, rotating:
#     `crawler-ha backup run --type incr`; rsync -a of the store into the
#     copy of the previous round (only the new files go); pg_basebackup -Ft
#     -z -Xs -c fast (PostgreSQL 15 has no incremental base backup: a full
#     one each time).
#  c. Restore, rotating: `pgbackrest restore` of the last incremental backup
#     to its restore point, then the server started until it answers
#     writable (recovery done); the last pg_basebackup's tars extracted
#     (base.tar.gz into the data directory, pg_wal.tar.gz into pg_wal), then
#     the server started; pg_restore of a pg_dump -Fc (taken after b) into an
#     empty database of a scratch server. The blobs: `crawler-ha backup
#     verify-blobs` of the last backup's manifest (every object read,
#     decrypted, decompressed and hashed: what a restore reads, without
#     writing the files back), and, when the program has it (`crawler-ha
#     restore --help` succeeds), the whole `crawler-ha restore --latest`
#     (database and blobs); the peer is rsync -a of the rsync copy into an
#     empty directory (plus pgbackrest restore or tar -x for the whole restore).
#
# Everything is on one disk and the store and cluster fit in the page cache
# (the sources are read from memory by every side alike). A sync, not timed,
# before each timed step (settle()).
#
# Each crawler-ha backup run's steps are timed from its output lines (made
# line-buffered with stdbuf), and crawler-ha restore's from the seconds it
# prints.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(time sleep);
use File::Find;
use File::Path qw(make_path remove_tree);
use IPC::Run;
use Compress::Zlib ();
use POSIX qw(floor);
use CrawlerHA::Test qw(new_node bench_conf nginx_serve ha_conninfo ha_wait_writable median);

my $n_images = $ENV{BACKUP_IMAGES} // 6000;
my $mean_kb = $ENV{BACKUP_MEAN_KB} // 50;
my $rounds = $ENV{BACKUP_ROUNDS} // 5;
my $incr_pct = $ENV{BACKUP_INCR_PCT} // 5;
my $worker = $ENV{CRAWLER_WORKER} or die 'CRAWLER_WORKER';
my $ha = $ENV{CRAWLER_HA} or die 'CRAWLER_HA';
# Under the work directory bench/backup/run removes (or keeps, KEEP=1).
my $tmp = "$ENV{TESTDATADIR}/bench";
make_path($tmp);
my ($pgbackrest) = grep { -x $_ } map { "$_/pgbackrest" } split /:/, $ENV{PATH};
die 'pgbackrest is not installed' unless $pgbackrest;

sub out { my ($l) = @_; print "$l\n"; }
sub rounds_text { return join(' ', map { sprintf '%.2f', $_ } @_); }
sub mib { return $_[0] / 1048576; }

# Servers started from a restored directory, stopped at the end whatever happens.
my (%restored, $site);
END
{
	for my $d (keys %restored)
	{
		system('pg_ctl', '-D', $d, '-m', 'immediate', 'stop') if -f "$d/postmaster.pid";
	}
	eval { $site->{harness}->kill_kill } if $site;
}

# run_timed(@cmd): seconds; dies on failure with what it wrote.
sub run_timed
{
	my (@cmd) = @_;
	my ($o, $e) = ('', '');
	my $t0 = time;
	IPC::Run::run(\@cmd, '<', \undef, '>', \$o, '2>', \$e, IPC::Run::timeout(1800))
	  or die "@cmd: exit " . ($? >> 8) . ": $o$e";
	return time - $t0;
}

# bytes under a path (files only).
sub du
{
	my ($path, $skip) = @_;
	my $b = 0;
	find({ wanted => sub { $File::Find::prune = 1 if $skip && $_ eq $skip; $b += -s $_ if -f $_ }, no_chdir => 0 }, $path);
	return $b;
}

# --- the site --------------------------------------------------------------
open my $urand, '<:raw', '/dev/urandom' or die "/dev/urandom: $!";
sub noise
{
	my ($n) = @_;
	my $b = '';
	while (length($b) < $n) { read($urand, $b, $n - length($b), length($b)) or die "urandom: $!"; }
	return $b;
}
sub chunk { my ($kind, $data) = @_; return pack('N', length $data) . $kind . $data . pack('N', Compress::Zlib::crc32($kind . $data)); }

# A PNG of about $bytes bytes: noise pixels (RGB), deflate level 0 (stored
# blocks): a valid image no compressor shrinks, as JPEG and PNG files are.
sub png
{
	my ($bytes) = @_;
	my $pixels = int($bytes / 3);
	my $w = int(sqrt($pixels * (0.6 + rand(1.0))));
	$w = 32 if $w < 32;
	my $h = int($pixels / $w);
	$h = 32 if $h < 32;
	my $row = $w * 3;
	my $pix = noise($row * $h);
	my $raw = join('', map { "\0" . substr($pix, $_ * $row, $row) } 0 .. $h - 1);
	return "\x89PNG\r\n\x1a\n" . chunk('IHDR', pack('NNCCCCC', $w, $h, 8, 2, 0, 0, 0))
	  . chunk('IDAT', Compress::Zlib::compress($raw, 0)) . chunk('IEND', '');
}

# An SVG drawing of about $bytes bytes: paths of random coordinates (text,
# which zstd shrinks two to three times).
sub svg
{
	my ($bytes) = @_;
	my $s = qq{<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="800" height="600" viewBox="0 0 800 600">\n};
	while (length($s) < $bytes)
	{
		$s .= sprintf('<path fill="#%06x" stroke="#%06x" d="M%d %d', int(rand(0xffffff)), int(rand(0xffffff)), rand(800), rand(600));
		$s .= sprintf(' C%d %d %d %d %d %d', rand(800), rand(600), rand(800), rand(600), rand(800), rand(600)) for 1 .. 8;
		$s .= " Z\"/>\n";
	}
	return $s . "</svg>\n";
}

# Sizes: log-normal (sigma 0.8) of mean $mean_kb KiB, 3 KiB to 1 MiB.
my $mu = log($mean_kb * 1024) - 0.32;
sub size_draw
{
	my $z = sqrt(-2 * log(1 - rand())) * cos(6.283185307 * rand());
	my $b = int(exp($mu + 0.8 * $z));
	return $b < 3072 ? 3072 : $b > 1048576 ? 1048576 : $b;
}

# gen_site($dir, $n): $n images on pages of 50 under $dir, index.html
# linking the pages. Returns the images' bytes.
sub gen_site
{
	my ($dir, $n) = @_;
	make_path("$dir/i");
	my ($bytes, @links) = (0);
	my $pages = int(($n + 49) / 50);
	for my $p (0 .. $pages - 1)
	{
		my @imgs;
		for my $k ($p * 50 .. ($p + 1) * 50 - 1)
		{
			last if $k >= $n;
			my $svg = rand() < 0.03;
			my $name = sprintf('i/%05d.%s', $k, $svg ? 'svg' : 'png');
			my $data = $svg ? svg(size_draw()) : png(size_draw());
			open my $f, '>:raw', "$dir/$name" or die "$dir/$name: $!";
			print $f $data;
			close $f;
			$bytes += length $data;
			push @imgs, qq{<img src="$name" alt="">};
		}
		open my $f, '>', sprintf('%s/p%03d.html', $dir, $p) or die $!;
		printf $f "<!DOCTYPE html><html><head><title>page %d</title></head><body>\n%s\n</body></html>\n", $p, join("\n", @imgs);
		close $f;
		push @links, sprintf('<a href="p%03d.html">page %d</a>', $p, $p);
	}
	open my $f, '>', "$dir/index.html" or die $!;
	print $f "<!DOCTYPE html><html><head><title>site</title></head><body>\n" . join("\n", @links) . "\n</body></html>\n";
	close $f;
	return $bytes;
}

my $t_setup = time;
my $n_inc = int($n_images * $incr_pct / 100 + 0.5);
srand(20261206);
my $site_bytes = gen_site("$tmp/site/base", $n_images);
gen_site("$tmp/site/inc$_", $n_inc) for 1 .. $rounds;
$site = nginx_serve("$tmp/site");
my $t_gen = time - $t_setup;

# --- the node, set up for backups before anything is written ---------------
my $node = new_node('bk', extra_conf => "crawler_ha.health_check_interval = '1s'\n" . bench_conf("max_wal_size = '1GB'"));
$node->safe_psql('postgres', "SELECT ha_setup('primary')");
$node->safe_psql('postgres', 'CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer; CREATE ROLE opsadmin LOGIN IN ROLE crawler_ha_admin');
my $bdir = "$tmp/backup";
make_path("$bdir/etc");
my $repo = "$bdir/repo";
my $pass = "$bdir/pass";
{
	# generated here, mode 600, never in the repository
	open my $f, '>', $pass or die "$pass: $!";
	chmod 0600, $pass;
	print $f join('', map { ('a' .. 'z', 'A' .. 'Z', 0 .. 9)[ int rand 62 ] } 1 .. 48), "\n";
	close $f;
}
my $conf = "$bdir/etc/pgbackrest.conf";
my $stanza = 'bk';
my @setup = ('backup', 'setup', '--node', ha_conninfo($node), '--pgdata', $node->data_dir, '--repo', $repo,
	'--passphrase-file', $pass, '--config', $conf, '--log-path', "$bdir/log", '--lock-path', "$bdir/lock",
	'--spool-path', "$bdir/spool");
sub cli
{
	my ($o, $e) = ('', '');
	IPC::Run::run([ $ha, @_ ], '<', \undef, '>', \$o, '2>', \$e, IPC::Run::timeout(1800));
	return ($? >> 8, $o, $e);
}
my ($rc, $o, $e) = cli(@setup);
die "backup setup: exit $rc (3 expected: restart needed): $o$e" unless $rc == 3;
$node->restart;
defined ha_wait_writable($node) or die 'bk does not write after its restart';
($rc, $o, $e) = cli(@setup);
die "backup setup after the restart: exit $rc: $o$e" unless $rc == 0;

# --- the crawls ------------------------------------------------------------
my $store = "$tmp/store";
my $db = ha_conninfo($node) . ' user=crawler';
sub crawl
{
	my ($sub, $want) = @_;
	my @cmd = ($worker, 'crawl', '--db', $db, '--storage', $store, '--seed', "$site->{base}/$sub/index.html",
		'--delay-ms', '0', '--per-host', '64', '--concurrency', '16', '--host-connections', '16', '--no-robots',
		'--max-depth', '1000', '--log-level', 'warning');
	my $t = run_timed(@cmd);
	my $sid = $node->safe_psql('postgres', 'SELECT max(id) FROM crawl_sessions');
	my $n = $node->safe_psql('postgres', "SELECT count(*) FROM images WHERE session_id = $sid");
	die "the crawl of $sub stored $n images of $want" unless $n == $want;
	return $t;
}
my $t_crawl = crawl('base', $n_images);
$node->safe_psql('postgres', 'VACUUM ANALYZE');
$node->safe_psql('postgres', 'CHECKPOINT');

sub figures
{
	my ($imgs, $bytes) = split /\|/, $node->safe_psql('postgres', 'SELECT count(*), sum(file_size) FROM images');
	my $cluster = du($node->data_dir, 'pg_wal');
	return ($imgs, $bytes, $cluster);
}
my ($imgs, $blob_bytes, $cluster_bytes) = figures();
my $store_bytes = du($store);
out(sprintf('## setup: %d images generated (%.0f MiB) in %.0f s, crawled into the store in %.1f s; %.0f s in all',
	$n_images, mib($site_bytes), $t_gen, $t_crawl, time - $t_setup));
out(sprintf('## data: %d images rows, %.0f MiB of blobs in the store (%d files), cluster %.0f MiB (pg_wal excluded), database %s',
	$imgs, mib($store_bytes), scalar(() = glob("$store/*/*/*")), mib($cluster_bytes),
	$node->safe_psql('postgres', "SELECT pg_size_pretty(pg_database_size('postgres'))")));

# --- the sides -------------------------------------------------------------
my @pgconn = ('-h', $node->host, '-p', $node->port);
my $out = "$tmp/out";
make_path($out);

# ours($type): runs crawler-ha backup run; returns { total, phases => {..},
# line => the blob line, label }. stdout line-buffered (stdbuf) so that each
# step's line is timed as it comes.
my @phase_names = ('begin + pgbackrest backup', 'pgbackrest verify', 'freeze + figures', 'blob copy', 'blob manifest + read-back',
	'blob retention', 'pgbackrest check');
my %phase_of = ('  backup:' => 0, '  verify:' => 1, '  recorded' => 2, '  blobs:' => 3, '  blob verify:' => 4,
	'  blob retention:' => 5, '  check:' => 6);
sub ours
{
	my ($type) = @_;
	my @cmd = ('stdbuf', '-oL', $ha, 'backup', 'run', '--node', ha_conninfo($node) . ' user=opsadmin',
		'--config', $conf, '--store', $store, '--type', $type);
	my ($buf, $err, @lines) = ('', '');
	my $t0 = time;
	my $h = IPC::Run::start(\@cmd, '<', \undef, '>', sub {
			$buf .= $_[0];
			while ($buf =~ s/^(.*)\n//) { push @lines, [ time, $1 ]; }
		}, '2>', \$err, IPC::Run::timeout(1800));
	$h->finish or die "backup run --type $type: exit " . ($? >> 8) . ': ' . join("\n", map { $_->[1] } @lines) . "\n$err";
	my $total = time - $t0;
	my %r = (total => $total, phases => {});
	my $prev = $t0;
	for my $l (@lines)
	{
		my ($key) = grep { index($l->[1], $_) == 0 } keys %phase_of;
		next unless defined $key;
		$r{phases}{ $phase_names[ $phase_of{$key} ] } += $l->[0] - $prev;
		$prev = $l->[0];
		$r{blobs} = $l->[1] if $key eq '  blobs:';
		($r{label}) = $l->[1] =~ /^  backup: \w+ (\S+),/ if $key eq '  backup:';
		$r{backup_line} = $l->[1] if $key eq '  backup:';
	}
	# the manifest's line comes between the copy's and the read-back's: the
	# manifest is written in the read-back's phase
	die "backup run --type $type: no step lines:\n" . join("\n", map { $_->[1] } @lines) unless $r{label} && $r{blobs};
	return \%r;
}

sub empty_blob_repository
{
	remove_tree($_) for glob("$repo/crawler_ha/blobs/[0-9a-f][0-9a-f]"), "$repo/crawler_ha/blobs/manifests";
}

sub basebackup
{
	my ($dir, @z) = @_;
	remove_tree($dir);
	settle();
	return run_timed('pg_basebackup', @pgconn, '-D', $dir, '-Ft', @z, '-Xs', '-c', 'fast');
}

# rsync_to($dest): (rsync -a seconds, sync -f seconds)
sub rsync_to
{
	my ($src, $dest) = @_;
	my $t = run_timed('rsync', '-a', "$src/", "$dest/");
	return ($t, run_timed('sync', '-f', $dest));
}

# settle(): before each timed step, sync (not timed): the writes and deletes
# of the step before it (rsync -a leaves its copy to the kernel's write-back,
# remove_tree its deletes to the journal) are on disk before the timer
# starts, so that no side pays for another's.
sub settle { system('sync') == 0 or die 'sync'; }

sub rotate { my ($r, @s) = @_; my $k = ($r - 1) % @s; return (@s[ $k .. $#s ], @s[ 0 .. $k - 1 ]); }
sub parse_blobs
{
	my ($l) = @_;
	my %b;
	@b{qw(referenced present copied read written zstd)} =
	  $l =~ /blobs: (\d+) referenced \(\d+ bytes\), (\d+) already in the repository, (\d+) copied: (\d+) bytes read, (\d+) bytes written \((\d+) compressed/
	  or die "blob line: $l";
	return \%b;
}

# --- a: full ---------------------------------------------------------------
my (%a, @a_ours, @a_again);
my $rsync_full = "$out/rsync-full";
for my $r (1 .. $rounds)
{
	for my $step (rotate($r, qw(ours bb_gz bb_plain dump rsync rsync_fsync)))
	{
		if ($step eq 'ours')
		{
			empty_blob_repository();
			settle();
			push @a_ours, ours('full');
			# and at once a second full backup, the blobs now in the
			# repository: what a later (weekly) full backup costs
			settle();
			push @a_again, ours('full');
		}
		elsif ($step eq 'bb_gz') { push @{ $a{bb_gz} }, basebackup("$out/bb-gz", '-z'); }
		elsif ($step eq 'bb_plain') { push @{ $a{bb_plain} }, basebackup("$out/bb-plain"); }
		elsif ($step eq 'dump') { unlink("$out/full.dump"); settle(); push @{ $a{dump} }, run_timed('pg_dump', @pgconn, '-d', 'postgres', '-Fc', '-f', "$out/full.dump"); }
		elsif ($step eq 'rsync_fsync')
		{
			remove_tree("$rsync_full-fsync");
			settle();
			push @{ $a{rsync_fsync} }, run_timed('rsync', '-a', '--fsync', "$store/", "$rsync_full-fsync/");
			remove_tree("$rsync_full-fsync");
		}
		else
		{
			remove_tree($rsync_full);
			settle();
			my ($t, $s) = rsync_to($store, $rsync_full);
			push @{ $a{rsync} }, $t;
			push @{ $a{rsync_sync} }, $t + $s;
		}
	}
	out(sprintf('## a round %d: crawler-ha full %.2f s (again %.2f s), pg_basebackup -z %.2f s, uncompressed %.2f s, pg_dump %.2f s, rsync -a %.2f s (+ sync -f %.2f s), rsync -a --fsync %.2f s',
		$r, $a_ours[-1]{total}, $a_again[-1]{total}, $a{bb_gz}[-1], $a{bb_plain}[-1], $a{dump}[-1], $a{rsync}[-1], $a{rsync_sync}[-1] - $a{rsync}[-1], $a{rsync_fsync}[-1]));
}
my $full_blob = parse_blobs($a_ours[-1]{blobs});
my $protected = $cluster_bytes + $blob_bytes;
my %m = map { $_ => median(@{ $a{$_} }) } keys %a;
my $m_ours = median(map { $_->{total} } @a_ours);
my $repo_db = `du -sb $repo/backup 2>/dev/null` =~ /^(\d+)/ ? $1 : 0;
sub phase_text
{
	my (@runs) = @_;
	return join(', ', map { my $p = $_; sprintf('%s %.2f', $p, median(map { $_->{phases}{$p} // 0 } @runs)) } @phase_names);
}
out('');
out(sprintf('## a. full backup: cluster %.0f MiB + %d blobs %.0f MiB = %.0f MiB, %d rounds, medians',
	mib($cluster_bytes), $full_blob->{referenced}, mib($blob_bytes), mib($protected), $rounds));
out('| full backup | median s | MiB/s | rounds (s) | output |');
out('|---|---|---|---|---|');
out(sprintf('| crawler-ha backup run --type full (empty blob repository) | %.2f | %.0f | %s | %d objects, %.1f MiB written (%d zstd) |',
	$m_ours, mib($protected) / $m_ours, rounds_text(map { $_->{total} } @a_ours), $full_blob->{copied}, mib($full_blob->{written}), $full_blob->{zstd}));
my $again_blob = parse_blobs($a_again[-1]{blobs});
out(sprintf('| crawler-ha backup run --type full again, the blobs already in the repository (a later full backup; not a peer round) | %.2f | %.0f | %s | %d objects copied |',
	median(map { $_->{total} } @a_again), mib($protected) / median(map { $_->{total} } @a_again), rounds_text(map { $_->{total} } @a_again), $again_blob->{copied}));
out(sprintf('| pg_basebackup -Ft -z -Xs -c fast | %.2f | | %s | %.1f MiB |', $m{bb_gz}, rounds_text(@{ $a{bb_gz} }), mib(du("$out/bb-gz"))));
out(sprintf('| pg_basebackup -Ft -Xs -c fast (uncompressed) | %.2f | | %s | %.1f MiB |', $m{bb_plain}, rounds_text(@{ $a{bb_plain} }), mib(du("$out/bb-plain"))));
out(sprintf('| pg_dump -Fc | %.2f | | %s | %.1f MiB |', $m{dump}, rounds_text(@{ $a{dump} }), mib(-s "$out/full.dump")));
out(sprintf('| rsync -a of the store into an empty directory | %.2f | %.0f | %s | %.1f MiB |', $m{rsync}, mib($blob_bytes) / $m{rsync}, rounds_text(@{ $a{rsync} }), mib(du($rsync_full))));
out(sprintf('| rsync -a, then sync -f of the copy | %.2f | %.0f | %s | |', $m{rsync_sync}, mib($blob_bytes) / $m{rsync_sync}, rounds_text(@{ $a{rsync_sync} })));
out(sprintf('| rsync -a --fsync (an fsync per file) | %.2f | %.0f | %s | |', $m{rsync_fsync}, mib($blob_bytes) / $m{rsync_fsync}, rounds_text(@{ $a{rsync_fsync} })));
for my $peer (['pg_basebackup -z + rsync -a', $m{bb_gz} + $m{rsync}], ['pg_basebackup (uncompressed) + rsync -a', $m{bb_plain} + $m{rsync}],
	['pg_dump -Fc + rsync -a', $m{dump} + $m{rsync}], ['pg_basebackup -z + rsync -a + sync -f', $m{bb_gz} + $m{rsync_sync}],
	['pg_basebackup -z + rsync -a --fsync', $m{bb_gz} + $m{rsync_fsync}])
{
	out(sprintf('| ratio crawler-ha / (%s: %.2f s, %.0f MiB/s) | %.2fx | | | |', $peer->[0], $peer->[1], mib($protected) / $peer->[1], $m_ours / $peer->[1]));
}
out('## crawler-ha full, its steps (median s): ' . phase_text(@a_ours));
out(sprintf('## crawler-ha full, the blob copy: %.1f ms per object copied', 1000 * median(map { $_->{phases}{'blob copy'} } @a_ours) / $full_blob->{copied}));
out('## crawler-ha full again, its steps (median s): ' . phase_text(@a_again));

# --- b: incremental ----------------------------------------------------------
# The copy the incremental rsync updates: the store as the last full backup saw it.
my $rsync_inc = "$out/rsync-inc";
rsync_to($store, $rsync_inc);
run_timed('rsync', '-a', '--fsync', "$store/", "$rsync_inc-fsync/");
my (%b, @b_ours);
for my $r (1 .. $rounds)
{
	crawl("inc$r", $n_inc);
	for my $step (rotate($r, qw(ours rsync bb_gz rsync_fsync)))
	{
		settle();
		if ($step eq 'ours') { push @b_ours, ours('incr'); }
		elsif ($step eq 'bb_gz') { push @{ $b{bb_gz} }, basebackup("$out/bb-gz", '-z'); }
		elsif ($step eq 'rsync_fsync') { push @{ $b{rsync_fsync} }, run_timed('rsync', '-a', '--fsync', "$store/", "$rsync_inc-fsync/"); }
		else
		{
			my ($t, $s) = rsync_to($store, $rsync_inc);
			push @{ $b{rsync} }, $t;
			push @{ $b{rsync_sync} }, $t + $s;
		}
	}
	out(sprintf('## b round %d: crawler-ha incr %.2f s, rsync -a %.2f s (+ sync -f %.2f s), rsync -a --fsync %.2f s, pg_basebackup -z %.2f s',
		$r, $b_ours[-1]{total}, $b{rsync}[-1], $b{rsync_sync}[-1] - $b{rsync}[-1], $b{rsync_fsync}[-1], $b{bb_gz}[-1]));
}
my $inc_blob = parse_blobs($b_ours[-1]{blobs});
my ($imgs2, $blob_bytes2, $cluster_bytes2) = figures();
%m = map { $_ => median(@{ $b{$_} }) } keys %b;
$m_ours = median(map { $_->{total} } @b_ours);
my $new_bytes = ($blob_bytes2 - $blob_bytes) / $rounds;
out('');
out(sprintf('## b. incremental backup after %d new images (%.1f MiB, %d %% more) each round, %d rounds, medians; at the end %d images, %.0f MiB of blobs, cluster %.0f MiB',
	$n_inc, mib($new_bytes), $incr_pct, $rounds, $imgs2, mib($blob_bytes2), mib($cluster_bytes2)));
out('| incremental backup | median s | rounds (s) | output |');
out('|---|---|---|---|');
out(sprintf('| crawler-ha backup run --type incr | %.2f | %s | last round: %d referenced, %d already there, %d copied (%.1f MiB written) |',
	$m_ours, rounds_text(map { $_->{total} } @b_ours), $inc_blob->{referenced}, $inc_blob->{present}, $inc_blob->{copied}, mib($inc_blob->{written})));
out(sprintf('| rsync -a into the previous copy | %.2f | %s | |', $m{rsync}, rounds_text(@{ $b{rsync} })));
out(sprintf('| rsync -a into the previous copy, then sync -f | %.2f | %s | |', $m{rsync_sync}, rounds_text(@{ $b{rsync_sync} })));
out(sprintf('| rsync -a --fsync into the previous copy | %.2f | %s | |', $m{rsync_fsync}, rounds_text(@{ $b{rsync_fsync} })));
out(sprintf('| pg_basebackup -Ft -z -Xs -c fast (full: no incremental in PostgreSQL 15) | %.2f | %s | %.1f MiB |', $m{bb_gz}, rounds_text(@{ $b{bb_gz} }), mib(du("$out/bb-gz"))));
for my $peer (['pg_basebackup -z + rsync -a', $m{bb_gz} + $m{rsync}], ['pg_basebackup -z + rsync -a + sync -f', $m{bb_gz} + $m{rsync_sync}],
	['pg_basebackup -z + rsync -a --fsync', $m{bb_gz} + $m{rsync_fsync}])
{
	out(sprintf('| ratio crawler-ha / (%s: %.2f s) | %.2fx | | |', $peer->[0], $peer->[1], $m_ours / $peer->[1]));
}
out('## crawler-ha incr, its steps (median s): ' . phase_text(@b_ours));

# --- c: restore --------------------------------------------------------------
my $last = $b_ours[-1]{label};
run_timed('pg_dump', @pgconn, '-d', 'postgres', '-Fc', '-f', "$out/last.dump");
my $want_images = $node->safe_psql('postgres', 'SELECT count(*) FROM images');
my $want_blobs = $node->safe_psql('postgres', 'SELECT count(DISTINCT sha256) FROM images');
my $restore_failed = 0;
my %restore_steps;
my ($have_restore, $restore_help) = do { my ($o, $e) = ('', ''); (IPC::Run::run([ $ha, 'restore', '--help' ], '<', \undef, '>', \$o, '2>', \$e) ? 1 : 0, "exit " . ($? >> 8) . ": $o$e") };

# A scratch server for pg_restore: the extensions installed as on the node
# (crawler_ha and pg_cron preloaded), an empty database made for each round.
my $scratch = new_node('bk_scratch', no_extension => 1, extra_conf => bench_conf("max_wal_size = '1GB'") . "cron.database_name = 'restored'\n");

# start_restored($dir): seconds from pg_ctl start to a writable server
# (recovery over), checking the images rows are all there.
sub start_restored
{
	my ($dir) = @_;
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	open my $f, '>>', "$dir/postgresql.auto.conf" or die $!;
	# the restored server is not a node: no HA worker, no archiving, its own port
	print $f "port = $port\narchive_mode = off\nshared_preload_libraries = ''\n";
	close $f;
	chmod 0700, $dir;
	$restored{$dir} = 1;
	my $t0 = time;
	run_timed('pg_ctl', '-w', '-t', '600', '-D', $dir, '-l', "$dir.log", 'start');
	my @psql = ('psql', '-XAtq', '-h', $node->host, '-p', $port, '-d', 'postgres', '-c');
	for (my $i = 0;; $i++)
	{
		my ($o, $e) = ('', '');
		IPC::Run::run([ @psql, 'SELECT pg_is_in_recovery()' ], '>', \$o, '2>', \$e);
		last if $o eq "f\n";
		die "$dir: still in recovery after 600 s" if $i > 6000;
		sleep 0.1;
	}
	my $t = time - $t0;
	my ($o, $e) = ('', '');
	IPC::Run::run([ @psql, 'SELECT count(*) FROM images' ], '>', \$o, '2>', \$e) or die "count: $e";
	die "$dir: $o images restored, $want_images expected" unless $o == $want_images;
	run_timed('pg_ctl', '-D', $dir, '-m', 'immediate', 'stop');
	delete $restored{$dir};
	remove_tree($dir);
	return $t;
}

(my $inc = $conf) =~ s{/[^/]+$}{/conf.d};
my %c;
my @c_steps = qw(pgbackrest tar pg_restore blobs_read restore_ours rsync_back);
for my $r (1 .. $rounds)
{
	my $this_restore;
	for my $step (rotate($r, @c_steps))
	{
		if ($step eq 'pgbackrest')
		{
			my $dir = "$out/restore-pgbackrest";
			remove_tree($dir);
			settle();
			my $t = run_timed($pgbackrest, "--config=$conf", "--config-include-path=$inc", "--stanza=$stanza",
				"--pg1-path=$dir", "--set=$last", '--type=name', "--target=crawler_ha_$last", '--target-action=promote', 'restore');
			push @{ $c{pgbackrest_files} }, $t;
			push @{ $c{pgbackrest} }, $t + start_restored($dir);
		}
		elsif ($step eq 'tar')
		{
			my $dir = "$out/restore-tar";
			remove_tree($dir);
			make_path($dir);
			chmod 0700, $dir;
			settle();
			my $t = run_timed('tar', '-xzf', "$out/bb-gz/base.tar.gz", '-C', $dir)
			  + run_timed('tar', '-xzf', "$out/bb-gz/pg_wal.tar.gz", '-C', "$dir/pg_wal");
			push @{ $c{tar_files} }, $t;
			push @{ $c{tar} }, $t + start_restored($dir);
		}
		elsif ($step eq 'pg_restore')
		{
			$scratch->safe_psql('postgres', 'DROP DATABASE IF EXISTS restored WITH (FORCE)');
			$scratch->safe_psql('postgres', 'CREATE DATABASE restored');
			settle();
			push @{ $c{pg_restore} }, run_timed('pg_restore', '-h', $scratch->host, '-p', $scratch->port, '-d', 'restored', '--exit-on-error', "$out/last.dump");
			my $n = $scratch->safe_psql('restored', 'SELECT count(*) FROM images');
			die "pg_restore: $n images restored, $want_images expected" unless $n == $want_images;
		}
		elsif ($step eq 'blobs_read')
		{
			settle();
			push @{ $c{blobs_read} }, run_timed($ha, 'backup', 'verify-blobs', '--config', $conf, '--stanza', $stanza, '--label', $last);
		}
		elsif ($step eq 'restore_ours')
		{
			next unless $have_restore;
			my ($d, $s) = ("$out/restore-ours", "$out/restore-ours-store");
			remove_tree($d, $s);
			settle();
			my ($t, $said) = eval {
				my ($o, $e) = ('', '');
				my $t0 = time;
				IPC::Run::run([ $ha, 'restore', '--target', $d, '--store', $s, '--latest', '--config', $conf ],
					'<', \undef, '>', \$o, '2>', \$e, IPC::Run::timeout(1800))
				  or die "crawler-ha restore: exit " . ($? >> 8) . ": $o$e";
				(time - $t0, $o);
			};
			if (defined $t)
			{
				# its own steps' seconds, as it prints them: "  database: ... (1.1 s)"
				for my $l (split /\n/, $said)
				{
					push @{ $restore_steps{$1} }, $2 if $l =~ /^  (\w+): .*?\((\d+(?:\.\d+)?) s\b/;
				}
				my $n = scalar(() = glob("$s/*/*/*"));
				out("## crawler-ha restore put back $n blobs, $want_blobs expected") unless $n == $want_blobs;
				push @{ $c{restore_ours} }, $t;
				$this_restore = $t;
			}
			else
			{
				# tried again in the next rounds: each failure counted, the first one shown
				out('## crawler-ha restore exists but failed here (this round is not measured):') unless $restore_failed;
				out("##   $_") for $restore_failed ? () : grep { /\S/ } split /\n/, $@;
				$restore_failed++;
			}
			remove_tree($d, $s, "$d.restore.log");
		}
		else
		{
			my $dest = "$out/restore-rsync";
			remove_tree($dest);
			settle();
			my ($t, $s) = rsync_to($rsync_inc, $dest);
			push @{ $c{rsync_back} }, $t;
			push @{ $c{rsync_back_sync} }, $t + $s;
		}
	}
	my $ours_restore = !$have_restore ? '' : defined $this_restore ? sprintf('crawler-ha restore %.2f s, ', $this_restore) : 'crawler-ha restore failed, ';
	out(sprintf('## c round %d: pgbackrest restore %.2f s (+ start %.2f s), tar -x %.2f s (+ start %.2f s), pg_restore %.2f s, crawler-ha verify-blobs %.2f s, %srsync -a back %.2f s (+ sync -f %.2f s)',
		$r, $c{pgbackrest_files}[-1], $c{pgbackrest}[-1] - $c{pgbackrest_files}[-1], $c{tar_files}[-1], $c{tar}[-1] - $c{tar_files}[-1],
		$c{pg_restore}[-1], $c{blobs_read}[-1], $ours_restore,
		$c{rsync_back}[-1], $c{rsync_back_sync}[-1] - $c{rsync_back}[-1]));
}
%m = map { $_ => median(@{ $c{$_} }) } keys %c;
out('');
out(sprintf('## c. restore of the last backup (%d images rows, cluster %.0f MiB, %.0f MiB of blobs), %d rounds, medians',
	$want_images, mib($cluster_bytes2), mib($blob_bytes2), $rounds));
out('| restore | files s | to a writable server s | rounds (s) |');
out('|---|---|---|---|');
out(sprintf('| pgbackrest restore --type=name (restore point), then recovery | %.2f | %.2f | %s |', $m{pgbackrest_files}, $m{pgbackrest}, rounds_text(@{ $c{pgbackrest} })));
out(sprintf('| tar -xzf of pg_basebackup -Ft -z -Xs, then recovery | %.2f | %.2f | %s |', $m{tar_files}, $m{tar}, rounds_text(@{ $c{tar} })));
out(sprintf('| pg_restore of pg_dump -Fc into an empty database | | %.2f | %s |', $m{pg_restore}, rounds_text(@{ $c{pg_restore} })));
out(sprintf('| ratio pgbackrest / tar -x (files; to a writable server) | %.2fx | %.2fx | |', $m{pgbackrest_files} / $m{tar_files}, $m{pgbackrest} / $m{tar}));
out(sprintf('| ratio pgbackrest / pg_restore (to a writable server) | | %.2fx | |', $m{pgbackrest} / $m{pg_restore}));
out('');
out('## the read half of a blob restore: crawler-ha backup verify-blobs of the last backup\'s manifest (every object read,');
out('## decrypted, decompressed and hashed, nothing written back), against rsync -a of the rsync copy into an empty directory');
out('| restore of the blobs | median s | MiB/s | rounds (s) |');
out('|---|---|---|---|');
out(sprintf('| crawler-ha backup verify-blobs --stanza --label (read half) | %.2f | %.0f | %s |', $m{blobs_read}, mib($blob_bytes2) / $m{blobs_read}, rounds_text(@{ $c{blobs_read} })));
out(sprintf('| rsync -a of the copy into an empty directory | %.2f | %.0f | %s |', $m{rsync_back}, mib($blob_bytes2) / $m{rsync_back}, rounds_text(@{ $c{rsync_back} })));
out(sprintf('| rsync -a, then sync -f | %.2f | %.0f | %s |', $m{rsync_back_sync}, mib($blob_bytes2) / $m{rsync_back_sync}, rounds_text(@{ $c{rsync_back_sync} })));
out(sprintf('| ratio verify-blobs / rsync -a | %.2fx | | |', $m{blobs_read} / $m{rsync_back}));
out(sprintf('| ratio verify-blobs / rsync -a + sync -f | %.2fx | | |', $m{blobs_read} / $m{rsync_back_sync}));
if ($have_restore && @{ $c{restore_ours} // [] })
{
	my $mr = median(@{ $c{restore_ours} });
	out('');
	out('| full restore, database and blobs | median s | MiB/s | rounds (s) |');
	out('|---|---|---|---|');
	out(sprintf('| crawler-ha restore --latest (pgBackRest restore, recovery, blobs put back and verified, ha_restored(), stopped) | %.2f | %.0f | %s%s |',
		$mr, mib($blob_bytes2 + $cluster_bytes2) / $mr, rounds_text(@{ $c{restore_ours} }), $restore_failed ? " ($restore_failed rounds failed)" : ''));
	for my $peer (['pgbackrest restore + recovery + rsync -a back', $m{pgbackrest} + $m{rsync_back}],
		['pgbackrest restore + recovery + rsync -a back + sync -f', $m{pgbackrest} + $m{rsync_back_sync}],
		['tar -x + recovery + rsync -a back', $m{tar} + $m{rsync_back}],
		['tar -x + recovery + rsync -a back + sync -f', $m{tar} + $m{rsync_back_sync}])
	{
		out(sprintf('| ratio crawler-ha restore / (%s: %.2f s) | %.2fx | | |', $peer->[0], $peer->[1], $mr / $peer->[1]));
	}
	out('## crawler-ha restore, its steps as it prints them (median s): '
		  . join(', ', map { sprintf('%s %.2f', $_, median(@{ $restore_steps{$_} })) } sort keys %restore_steps));
}
else
{
	out('## crawler-ha restore: ' . ($have_restore ? "not measured: it failed in all $restore_failed rounds (above)" : 'not in this build (crawler-ha restore --help fails: ' . (split /\n/, $restore_help)[0] . '): only the read half above is measured'));
}
out(sprintf('## run: %.0f s in all', time - $t_setup));

$site->{harness}->kill_kill;
undef $site;
$_->stop for ($node, $scratch);
