# crawler-worker export on a real crawl of the sample site, with two
# thumbnail sizes: every image the crawler can decode has both, each a file
# of the store named by its sha256, of the dimensions its row says, fitting
# its box. JSON lines, CSV and webdataset shards hold exactly the session's
# rows, every value as the database has it (thumbnails as an object in
# JSON), every image's bytes hashing to its sha256; a blob missing
# from the store is skipped and said (exit status 1); a session that does
# not exist is exit status 1, an output in a missing directory 2, an
# interrupted export 3.
use strict;
use warnings;
use Digest::SHA qw(sha256_hex);
use File::Path qw(rmtree);
use File::Temp qw(tempdir);
use IPC::Run;
use JSON::PP;
use List::Util qw(max min);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use CrawlerHA::Test qw(new_node nginx_serve sample_site sample_site_worker);

my @started;
END { eval { $_->kill_kill } for @started; }

my $worker = sample_site_worker();

my $site = tempdir(CLEANUP => 1) . '/site';
eval { sample_site($site); 1 } or BAIL_OUT("the sample site: $@");
my $web = nginx_serve($site);
push @started, $web->{harness};
my $base = "http://127.0.0.1:$web->{port}";

my $node = new_node('export');
$node->safe_psql('postgres', 'CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer');
$node->safe_psql('postgres', 'CREATE ROLE reader LOGIN IN ROLE crawler_ha_reader');
my $db = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres user=crawler';
my $storage = tempdir(CLEANUP => 1);
my $out_dir = tempdir(CLEANUP => 1);

sub run_worker
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ $worker, @_ ], '<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(300));
	return ($? >> 8, $out, $err);
}

my ($rc, $out, $err) = run_worker('crawl', '--db', $db, '--storage', $storage, '--seed', "$base/",
	'--delay-ms', '0', '--per-host', '8', '--max-depth', '30', '--thumbnail', 'small=50', '--thumbnail', 'big=270');
is($rc, 0, 'the sample site is crawled, with two thumbnail sizes') or diag $err;
my $sid = $node->safe_psql('postgres', 'SELECT max(id) FROM crawl_sessions');
my $n = $node->safe_psql('postgres', "SELECT count(*) FROM images WHERE session_id = $sid");
cmp_ok($n, '>', 7, "the session has images to export ($n)");

# ---- thumbnails ----
# libvips decodes every format of the sample site but BMP and ICO: those are
# recorded with {} (asked, none made) and the reason in the item's result.
my $thumb_rows = decode_json($node->safe_psql('postgres', qq{
	SELECT json_agg(json_build_object('id', id, 'format', format, 'width', width, 'height', height,
		'thumbnails', thumbnails) ORDER BY id) FROM images WHERE session_id = $sid}));
my ($with_both, $none_made, $files, $dims, $fits, $blobs) = (0, 0, 0, 0, 0, 0);
my %undecodable = (bmp => 1, ico => 1);
# every thumbnail's width and height, from one vipsheader run ("path: WxH ...")
my @thumb_paths = map {
	my $t = $_->{thumbnails};
	ref $t eq 'HASH' ? map { "$storage/$_->{file_path}" } grep { ref $_ eq 'HASH' } values %$t : ()
} @$thumb_rows;
my %header;
if (@thumb_paths)
{
	my $out = '';
	IPC::Run::run([ 'vipsheader', @thumb_paths ], '>', \$out);
	$header{$1} = [ $2, $3 ] while $out =~ /^(.+): (\d+)x(\d+) /mg;
}
for my $r (@$thumb_rows)
{
	my $t = $r->{thumbnails};
	if ($undecodable{ $r->{format} })
	{
		++$none_made if ref $t eq 'HASH' && !%$t;
		next;
	}
	next unless ref $t eq 'HASH' && join(',', sort keys %$t) eq 'big,small';
	++$with_both;
	for my $name (qw(small big))
	{
		my $th = $t->{$name};
		my $path = "$storage/$th->{file_path}";
		++$files if $th->{file_path} =~ m{^(\w\w)/(\w\w)/\Q$th->{sha256}\E\.(jpg|png)$}
		  && "$1$2" eq substr($th->{sha256}, 0, 4) && -f $path && -s $path == $th->{bytes}
		  && sha256_hex(slurp_file($path)) eq $th->{sha256};
		my ($w, $h) = @{ $header{$path} // [ '', '' ] };
		++$dims if $w eq $th->{width} && $h eq $th->{height};
		# the box's side, or the image's own when smaller (never enlarged),
		# the other side by the aspect ratio (rounded; SVG at its own scale)
		my $box = $name eq 'small' ? 50 : 270;
		++$fits if max($w, $h) == min($box, max($r->{width}, $r->{height}))
		  && abs($w * $r->{height} - $h * $r->{width}) <= max($r->{width}, $r->{height});
	}
}
my $undecodable = grep { $undecodable{ $_->{format} } } @$thumb_rows;
cmp_ok($undecodable, '>', 0, "the sample site has images libvips cannot decode here ($undecodable)");
is($with_both, $n - $undecodable, 'every other image row has its two thumbnails');
is($none_made, $undecodable, '... those have none, recorded as {}');
is($files, 2 * $with_both, 'each thumbnail is a file of the store named by its sha256, its bytes hashing to it');
is($dims, 2 * $with_both, '... of the width and height its row records (vipsheader)');
is($fits, 2 * $with_both, '... fitting its box, the aspect kept, never enlarged');
like($node->safe_psql('postgres', qq{
	SELECT string_agg(DISTINCT f.result ->> 'thumbnail_error', ' | ') FROM crawl_frontier f
	 WHERE f.session_id = $sid AND f.result ? 'thumbnail_error'}), qr/no bmp loader/,
	'the reason is in the item\'s result');

# The rows as the export must give them: every column, times in UTC ISO 8601.
my $ts = q{'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'};
my $expected = decode_json($node->safe_psql('postgres', qq{
	SELECT json_agg(json_build_object('id', id, 'url', url, 'sha256', sha256, 'file_path', file_path,
		'file_size', file_size, 'width', width, 'height', height, 'format', format,
		'content_type', content_type, 'found_on', found_on, 'session_id', session_id,
		'http_status', http_status, 'created_at', to_char(created_at AT TIME ZONE 'UTC', $ts),
		'updated_at', to_char(updated_at AT TIME ZONE 'UTC', $ts), 'etag', etag,
		'last_modified', last_modified, 'checked_at', to_char(checked_at AT TIME ZONE 'UTC', $ts),
		'thumbnails', thumbnails, 'filename', filename) ORDER BY id)
	  FROM images WHERE session_id = $sid}));
my @columns = qw(id url sha256 file_path file_size width height format content_type found_on session_id
	http_status created_at updated_at etag last_modified checked_at thumbnails filename);
# In CSV the thumbnails are their JSON text, as the database writes jsonb.
my $thumbnails_text = decode_json($node->safe_psql('postgres',
	"SELECT json_object_agg(id, thumbnails::text) FROM images WHERE session_id = $sid"));

# ---- JSON lines ----
my $t0 = time;
($rc, $out, $err) = run_worker('export', '--db', $db, '--session', $sid, '--format', 'jsonl',
	'--output', "$out_dir/s.jsonl");
is($rc, 0, 'export --format jsonl exits 0') or diag $err;
note sprintf('jsonl export of %d rows: %.2f s', $n, time - $t0);
like($out, qr/^session $sid: $n images exported as jsonl/m, '... and says what it exported');
open my $fh, '<:raw', "$out_dir/s.jsonl" or die $!;
my @lines = <$fh>;
close $fh;
is(scalar @lines, $n, 'one line per image of the session');
my @rows = map { decode_json($_) } @lines;
is_deeply(\@rows, $expected, 'each line is its row, every column, in id order');
like($lines[0], qr/^\{"id":\d+,"url":/, 'the columns in the table\'s order');
ok(!-e "$out_dir/s.jsonl.tmp.$$" && !grep({ /\.tmp\./ } glob("$out_dir/*")), 'no temporary file is left');

# read-only, by a reader: what a standby's connection allows
($rc, $out, $err) = run_worker('export', '--db',
	'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres user=reader options=-cdefault_transaction_read_only=on',
	'--session', $sid, '--format', 'jsonl', '--output', "$out_dir/ro.jsonl");
is($rc, 0, 'a crawler_ha_reader in a read-only transaction exports too') or diag $err;
is(slurp_file("$out_dir/ro.jsonl"), slurp_file("$out_dir/s.jsonl"), '... the same lines');

# ---- CSV ----
($rc, $out, $err) = run_worker('export', '--db', $db, '--session', $sid, '--format', 'csv',
	'--output', "$out_dir/s.csv");
is($rc, 0, 'export --format csv exits 0') or diag $err;
my $csv = slurp_file("$out_dir/s.csv");
my @records = parse_csv($csv);
is_deeply(shift(@records), \@columns, 'the header names every column');
is(scalar @records, $n, 'one record per image');
is_deeply(\@records,
	[ map { my $r = $_; [ map { $_ eq 'thumbnails' ? $thumbnails_text->{ $r->{id} } // '' : $r->{$_} // '' } @columns ] }
		  @$expected ],
	'each record is its row (NULL an empty field)');
like($csv, qr/\r\n\z/, 'records end with CRLF');
($rc, $out, $err) = run_worker('export', '--db', $db, '--session', $sid, '--format', 'csv', '--output', '-');
is($rc, 0, '--output - exits 0') or diag $err;
is($out, $csv, '... and writes the same CSV on standard output');
like($err, qr/$n images exported as csv to standard output/, '... its summary on standard error');

# ---- webdataset ----
my $shards = "$out_dir/shards";
($rc, $out, $err) = run_worker('export', '--db', $db, '--session', $sid, '--format', 'webdataset',
	'--output', $shards, '--storage', $storage, '--shard-size', '3');
is($rc, 0, 'export --format webdataset exits 0') or diag $err;
my $nshards = int(($n + 2) / 3);
my @tars = sort glob("$shards/*.tar");
is_deeply([ map { s{.*/}{}r } @tars ], [ map { sprintf('%05d.tar', $_) } 0 .. $nshards - 1 ],
	"a shard of at most 3 images is not enough: $nshards shards, 00000.tar onwards");
my %by_id = map { $_->{id} => $_ } @$expected;
my ($samples, $good_bytes, $good_json, @keys) = (0, 0, 0);
for my $tar (@tars)
{
	my $list = '';
	IPC::Run::run([ 'tar', '-tf', $tar ], '>', \$list) or die "tar -tf $tar failed";
	# one extraction per shard, by GNU tar, not one per member
	my $dir = "$out_dir/untar";
	rmtree($dir);
	mkdir $dir or die "mkdir $dir: $!";
	IPC::Run::run([ 'tar', '-xf', $tar, '-C', $dir ]) or die "tar -xf $tar failed";
	for my $member (split /\n/, $list)
	{
		next unless $member =~ /^(\d+)\.json$/;
		my $key = $1;
		push @keys, $key;
		my $meta = decode_json(slurp_file("$dir/$member"));
		my ($image) = grep { /^\Q$key\E\.(?!json$)\w+$/ } split /\n/, $list;
		my $bytes = slurp_file("$dir/$image");
		++$samples;
		my $row = $by_id{ $meta->{id} };
		++$good_bytes if $row && sha256_hex($bytes) eq $row->{sha256};
		my %rest = %$meta;
		++$good_json if delete($rest{key}) eq $key && $row && is_same(\%rest, $row);
	}
}
is($samples, $n, 'every image is in a shard, with its JSON');
is($good_bytes, $n, "every image's bytes hash to its row's sha256");
is($good_json, $n, 'every JSON is its row, with its key');
is_deeply(\@keys, [ map { sprintf('%06d', int($_ / 3) * 10 + $_ % 3) } 0 .. $n - 1 ],
	'keys as img2dataset makes them: the shard, then the index in it');
my $stats = decode_json(slurp_file("$shards/stats.json"));
is_deeply([ @$stats{qw(count successes failed_to_download shards)} ], [ $n, $n, 0, $nshards ],
	'stats.json counts the images and the shards');
is(decode_json(slurp_file("$shards/00000_stats.json"))->{successes}, 3, 'each shard has its _stats.json');

# ---- a blob missing from the store ----
my ($gone_id, $gone_path) = split /\|/, $node->safe_psql('postgres', qq{
	SELECT min(id), min(file_path) FROM images WHERE session_id = $sid
	   AND file_path IN (SELECT file_path FROM images GROUP BY file_path HAVING count(*) = 1)
	 GROUP BY file_path ORDER BY 1 LIMIT 1});
unlink("$storage/$gone_path") or die "unlink $storage/$gone_path: $!";
($rc, $out, $err) = run_worker('export', '--db', $db, '--session', $sid, '--format', 'webdataset',
	'--output', "$out_dir/holed", '--storage', $storage, '--shard-size', '3');
is($rc, 1, 'a blob missing from the store: exit status 1');
like($err, qr/image $gone_id \(.*\) skipped: cannot read .*No such file/, '... the image is named, with why');
like($err, qr/1 image was skipped/, '... and counted at the end');
$stats = decode_json(slurp_file("$out_dir/holed/stats.json"));
is_deeply([ @$stats{qw(count successes failed_to_download)} ], [ $n, $n - 1, 1 ],
	'... stats.json counts it as failed; the rest is exported');
my ($failure) = map { @{ decode_json(slurp_file($_))->{failures} } } glob("$out_dir/holed/*_stats.json");
is($failure->{id}, $gone_id, "... and its shard's _stats.json says which and why");

# ---- mistakes ----
($rc, $out, $err) = run_worker('export', '--db', $db, '--session', '999999', '--format', 'jsonl',
	'--output', "$out_dir/none.jsonl");
is($rc, 1, 'a session that does not exist: exit status 1');
like($err, qr/session 999999 does not exist/, '... said');
ok(!-e "$out_dir/none.jsonl" && !glob("$out_dir/none.jsonl.tmp*"), '... and no file is made');
($rc, $out, $err) = run_worker('export', '--db', $db, '--session', $sid, '--format', 'jsonl',
	'--output', "$out_dir/missing/s.jsonl");
is($rc, 2, 'an output in a missing directory: exit status 2');
like($err, qr/cannot write in \Q$out_dir\E\/missing: No such file or directory/, '... said');
($rc, $out, $err) = run_worker('export', '--db', $db, '--session', $sid, '--format', 'webdataset',
	'--output', $shards, '--storage', $storage);
is($rc, 2, 'a shards directory that is not empty: exit status 2');

# ---- interrupted ----
# A database that does not answer is waited for: SIGINT ends the wait.
my $dead = 'host=127.0.0.1 port=' . PostgreSQL::Test::Cluster::get_free_port() . ' dbname=postgres connect_timeout=2';
my ($iout, $ierr) = ('', '');
my $h = IPC::Run::start([ $worker, 'export', '--db', $dead, '--session', $sid, '--format', 'csv',
		'--output', "$out_dir/int.csv" ], '<', \undef, '>', \$iout, '2>', \$ierr);
sleep 1.5;
$h->signal('INT');
$h->finish;
is($h->result(0), 3, 'SIGINT: exit status 3');
ok(!grep({ /int\.csv/ } glob("$out_dir/*")), '... and no file, whole or temporary, is left');

$web->{harness}->kill_kill;
done_testing();

# The bytes of one member of a tar file.
# Whether two flat hashes have the same keys and values (undef for null).
sub is_same
{
	my ($got, $want) = @_;
	return 0 unless join(',', sort keys %$got) eq join(',', sort keys %$want);
	for (keys %$got)
	{
		return 0 if defined $got->{$_} != defined $want->{$_};
		next unless defined $got->{$_};
		# a JSON column (thumbnails) as its canonical text
		my ($g, $w) = map { ref $_ ? JSON::PP->new->canonical->encode($_) : $_ } $got->{$_}, $want->{$_};
		return 0 if $g ne $w;
	}
	return 1;
}

# RFC 4180 records: fields separated by commas, records by CRLF; a quoted
# field may hold commas, CR, LF and doubled quotes. Dies on anything else
# (a bare quote inside an unquoted field, an unterminated quote).
sub parse_csv
{
	my ($text) = @_;
	my (@records, @fields);
	my $pos = 0;
	my $len = length $text;
	while ($pos < $len)
	{
		my $field;
		if (substr($text, $pos, 1) eq '"')
		{
			pos($text) = $pos;
			$text =~ /\G"((?:[^"]|"")*)"/gc or die "unterminated quote at $pos";
			($field = $1) =~ s/""/"/g;
			$pos = pos($text);
		}
		else
		{
			pos($text) = $pos;
			$text =~ /\G([^",\r\n]*)/g;
			$field = $1;
			$pos = pos($text);
		}
		push @fields, $field;
		my $next = substr($text, $pos, 1);
		if ($next eq ',') { $pos++; next; }
		die "expected CRLF at $pos" unless substr($text, $pos, 2) eq "\r\n";
		$pos += 2;
		push @records, [@fields];
		@fields = ();
	}
	return @records;
}
