# The application API's file routes against peers measured in the same run,
# same machine, same client, in interleaved rounds (each side goes first in
# turn), medians printed:
#  1. GET /api/images/ID/content (an SQL call, image_get(), then the file
#     from the store) against nginx serving the same files of the same store
#     directory, both over TLS with the same certificate, ab with keep-alive
#     and the same number of clients: large JPEGs in MB/s, small ones in
#     requests per second. A third side, the agent's GET /api/blobs/SHA256
#     of the same file, is the same answer without the SQL call.
#  2. GET /api/images/ID/thumbnail?size=256:
#     cold: thumbnails of distinct images made by the agent (its cache
#     emptied before each round) against the vipsthumbnail CLI making the
#     same thumbnails of the same files, with the same options (Q=80, strip)
#     and the same parallelism (thumbnail_threads = xargs -P);
#     warm: a kept thumbnail served by the agent against nginx serving the
#     same cached file.
# The images are noise cropped from one generated picture, so that JPEG does
# not squeeze them to nothing and each has its own sha256. Their bytes go
# into the agent's store by PUT /api/blobs (the path a worker uses), their
# rows by image_record().
use strict;
use warnings;
use Digest::SHA;
use File::Path qw(remove_tree);
use IO::Socket::INET;
use IPC::Run;
use POSIX qw(ceil);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(time sleep);
use CrawlerHA::Test qw(ha_pair wait_port bench_conf median);
use CrawlerHA::Agent qw(agent_start agent_stop agent_kill agent_pki agent_blob_files);

my $rounds = $ENV{APP_API_ROUNDS} // 5;
my $n_thumbs = $ENV{APP_API_THUMBS} // 80;
# Each ab run lasts this long (ab -t), whatever the side's rate: a fixed
# count of requests would time nginx's small answers over a fraction of a
# second.
my $seconds = $ENV{APP_API_SECONDS} // 2;
my $clients = $ENV{APP_API_CLIENTS} // 8;
my $par = $ENV{APP_API_THUMB_PARALLEL} // 2;
my $thumb_size = 256;
# APP_API_PERF=FILE: after the rounds, one more run of each measure and side
# under a system-wide perf profile (perf record -a -g), into
# FILE.<measure>.<side> (needs kernel.perf_event_paranoid = -1); not counted.
my $perf = $ENV{APP_API_PERF} // '';
sub out { my ($l) = @_; print "$l\n"; }

my (@agents, @started);
END
{
	eval { $_->kill_kill } for @started;
	eval { agent_kill($_) } for @agents;
}

my $pki = agent_pki();
# Production settings (not the test framework's tiny ones): every content
# request is one SQL call.
my $conf = bench_conf();
my ($p, $s) = ha_pair(names => [ 'aa_p', 'aa_s' ], conf => $conf);
die "the installed crawler_ha has no image_get() or image_list(): install the current extension (make -C extension install)\n"
  unless $p->safe_psql('postgres', "SELECT count(*) FROM pg_proc WHERE proname IN ('image_get', 'image_list')") >= 2;
my $ap = agent_start($p, args => [ '--log-level', 'warning', '--thumbnail-threads', $par ]);
push @agents, $ap;
# The standby's agent takes the uploads' replicas, so that nothing is left
# retrying in the background while the rounds run.
my $as = agent_start($s, args => [ '--log-level', 'warning' ]);
push @agents, $as;

sub run_or_die
{
	my (@cmd) = @_;
	my ($o, $e) = ('', '');
	IPC::Run::run(\@cmd, '>', \$o, '2>', \$e) or die "@cmd: $e";
	return $o;
}

# --- the images ---
my $gen = PostgreSQL::Test::Utils::tempdir();
# Three noise bands, 2400x1800: crops of it at distinct offsets are distinct
# images, and JPEG keeps noise large (a 1600x1200 crop at Q=85 is ~1.1 MB).
run_or_die('vips', 'gaussnoise', "$gen/$_.v", 2400, 1800, '--sigma', 40, '--mean', 128) for qw(r g b);
run_or_die('vips', 'bandjoin', "$gen/r.v $gen/g.v $gen/b.v", "$gen/rgbf.v");
run_or_die('vips', 'cast', "$gen/rgbf.v", "$gen/rgbu.v", 'uchar');
run_or_die('vips', 'copy', "$gen/rgbu.v", "$gen/rgb.v", '--interpretation', 'srgb');
# The first large one and the small one are the files of the content
# measures (one URL per ab run, as ab takes one; the store's files are in the
# page cache for both sides alike); the large ones are the thumbnails'
# sources.
my (@large, @small, @crops);
for my $i (0 .. $n_thumbs - 1)
{
	my $f = "$gen/large_$i.jpg";
	push @crops, [ "$f\[Q=85]", 3 + ($i * 37) % 797, 5 + ($i * 53) % 593, 1600, 1200 ];
	push @large, { file => $f, width => 1600, height => 1200 };
}
push @crops, [ "$gen/small.jpg\[Q=85]", 7, 11, 256, 192 ];
push @small, { file => "$gen/small.jpg", width => 256, height => 192 };
# Two at a time (two cores).
my @making;
for my $c (@crops)
{
	push @making, IPC::Run::start([ 'vips', 'crop', "$gen/rgb.v", @$c ], '>', \my $co, '2>', \my $ce);
	(shift @making)->finish or die "vips crop @$c" if @making >= 2;
}
$_->finish or die 'vips crop' for @making;
unlink glob("$gen/*.v");

# Into the agent's store (PUT /api/blobs, the agents' shared token) and
# recorded in one session.
my $sid = $p->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://bench.example/'], '{}')");
my @sql;
my $n = 0;
for my $img (@large, @small)
{
	$img->{sha256} = Digest::SHA->new(256)->addfile($img->{file}, 'b')->hexdigest;
	$img->{size} = -s $img->{file};
	my $sha = $img->{sha256};
	$img->{rel} = substr($sha, 0, 2) . '/' . substr($sha, 2, 2) . "/$sha.jpg";
	my $code = run_or_die('curl', '-sS', '--cacert', $pki->{ca}, '-H', "Authorization: Bearer $pki->{token}",
		'-o', '/dev/null', '-w', '%{http_code}', '-T', $img->{file}, "$ap->{url}/api/blobs/$sha.jpg");
	die "PUT /api/blobs/$sha.jpg: $code" unless $code =~ /^20[01]$/;
	$n++;
	push @sql, "SELECT image_record($sid, 'http://bench.example/$n.jpg', '$sha', '$img->{rel}', $img->{size}, "
	  . "$img->{width}, $img->{height}, 'jpeg', 'image/jpeg')";
}
my @ids = split /\n/, $p->safe_psql('postgres', join(";\n", @sql));
die 'image_record() gave ' . scalar(@ids) . " ids for $n images" unless @ids == $n;
$_->{id} = shift @ids for (@large, @small);
# Until the standby's agent holds every blob: file sync then rests.
my $t0 = time;
sleep(0.2) while keys %{ agent_blob_files($as) } < $n && time - $t0 < 120;
die 'the standby\'s agent did not get the blobs' unless keys %{ agent_blob_files($as) } >= $n;
sleep(1);

# --- nginx over TLS, the same certificate, on the agent's store ---
my $ngx_port = PostgreSQL::Test::Cluster::get_free_port();
my $ngx_dir = PostgreSQL::Test::Utils::tempdir();
open my $cf, '>', "$ngx_dir/nginx.conf" or die $!;
# As many workers as the agent has event-loop threads (2); no access log
# (the agent logs only refusals at this level); keep-alive without a
# per-connection request limit, as the agent.
print $cf <<"CONF";
worker_processes 2;
daemon off;
pid $ngx_dir/nginx.pid;
error_log $ngx_dir/error.log;
events { worker_connections 256; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  client_body_temp_path $ngx_dir/body; proxy_temp_path $ngx_dir/proxy;
  fastcgi_temp_path $ngx_dir/fastcgi; uwsgi_temp_path $ngx_dir/uwsgi; scgi_temp_path $ngx_dir/scgi;
  server {
    listen 127.0.0.1:$ngx_port ssl;
    ssl_certificate $pki->{cert};
    ssl_certificate_key $pki->{key};
    # 1.22 leaves TLS 1.3 out by default; the agent and ab speak it.
    ssl_protocols TLSv1.2 TLSv1.3;
    root $ap->{store};
  }
}
CONF
close $cf;
my ($ngx_out, $ngx_err) = ('', '');
my $ngx = IPC::Run::start([ '/usr/sbin/nginx', '-e', 'stderr', '-p', $ngx_dir, '-c', "$ngx_dir/nginx.conf" ],
	'>', \$ngx_out, '2>', \$ngx_err);
push @started, $ngx;
wait_port($ngx_port, 5) or die "nginx did not start: $ngx_err";
my $ngx_url = "https://127.0.0.1:$ngx_port";

# --- the clients ---
# ab: { rps, mbs (body MB/s, MB = 10^6 bytes), bytes (document length),
# failed, tls, done (requests answered) }.
sub ab
{
	my ($url, @args) = @_;
	my ($o, $e) = ('', '');
	IPC::Run::run([ 'ab', '-q', '-k', @args, $url ], '>', \$o, '2>', \$e) or die "ab @args $url: $e";
	my ($rps) = $o =~ /Requests per second:\s+([\d.]+)/;
	my ($len) = $o =~ /Document Length:\s+(\d+) bytes/;
	my ($done) = $o =~ /Complete requests:\s+(\d+)/;
	my ($secs) = $o =~ /Time taken for tests:\s+([\d.]+) seconds/;
	my ($tls) = $o =~ m{SSL/TLS Protocol:\s+(\S+)};
	my ($failed) = $o =~ /Failed requests:\s+(\d+)/;
	my ($non2xx) = $o =~ /Non-2xx responses:\s+(\d+)/;
	die "ab $url: no answer\n$o$e" unless $rps && $len && $secs;
	return { rps => $rps, mbs => $done * $len / $secs / 1e6, bytes => $len, failed => ($failed // 0) + ($non2xx // 0),
		tls => $tls // '?', done => $done };
}

sub thumb_dir { return "$ap->{store}/.thumbnails/$_[0]"; }
my @cold = @large[ 0 .. $n_thumbs - 1 ];
my $vt_out = PostgreSQL::Test::Utils::tempdir();
my $in_flight = 2 * $par;

# The agent, its cache of this size emptied: thumbnails/s, and non-200s.
sub cold_agent
{
	remove_tree(thumb_dir($thumb_size));
	my @cmd = ('curl', '-sS', '--http1.1', '--cacert', $pki->{ca}, '-Z', '--parallel-max', $in_flight,
		'-w', '%{http_code}\n',
		map { ('-o', '/dev/null', "$ap->{url}/api/images/$_->{id}/thumbnail?size=$thumb_size") } @cold);
	my ($o, $e) = ('', '');
	my $t = time;
	IPC::Run::run(\@cmd, '>', \$o, '2>', \$e);
	$t = time - $t;
	my @codes = split /\n/, $o;
	return (@cold / $t, (grep { $_ ne '200' } @codes) + (@cold - @codes));
}

# vipsthumbnail: the same files, the same options, $par processes at once,
# each with a share of the files (one libvips start per process) and, like
# the agent's pool threads, one libvips worker each.
sub cold_cli
{
	remove_tree($vt_out, { keep_root => 1 });
	my $list = join("\n", map { "$ap->{store}/$_->{rel}" } @cold) . "\n";
	local $ENV{VIPS_CONCURRENCY} = 1;
	my ($o, $e) = ('', '');
	my $t = time;
	IPC::Run::run([ 'xargs', '-P', $par, '-n', ceil(@cold / $par), 'vipsthumbnail', '--size', $thumb_size,
			'-o', "$vt_out/%s.jpg[Q=80,strip]" ], '<', \$list, '>', \$o, '2>', \$e)
	  or die "vipsthumbnail: $e";
	$t = time - $t;
	my @made = glob("$vt_out/*.jpg");
	return (@cold / $t, @cold - @made);
}

my $big = $large[0];
my $little = $small[0];
my %url = (
	large_agent => "$ap->{url}/api/images/$big->{id}/content",
	large_nginx => "$ngx_url/$big->{rel}",
	small_agent => "$ap->{url}/api/images/$little->{id}/content",
	small_nginx => "$ngx_url/$little->{rel}",
	large_blob => "$ap->{url}/api/blobs/$big->{sha256}",
	small_blob => "$ap->{url}/api/blobs/$little->{sha256}",
	warm_agent => "$ap->{url}/api/images/$big->{id}/thumbnail?size=$thumb_size",);

# Warm-up, and the thumbnail the warm measure serves.
ab($url{$_}, '-n', 50, '-c', 2) for qw(large_agent large_nginx large_blob small_agent small_nginx small_blob warm_agent);
my ($warm_file) = glob(thumb_dir($thumb_size) . '/' . substr($big->{sha256}, 0, 2) . "/$big->{sha256}.*");
die 'no cached thumbnail after a request' unless $warm_file;
(my $warm_rel = $warm_file) =~ s{^\Q$ap->{store}\E/}{};
$url{warm_nginx} = "$ngx_url/$warm_rel";
# The same bytes from both sides (the cache file is what nginx serves).
for my $k (qw(large small warm))
{
	my %len = map { $_ => ab($url{"${k}_$_"}, '-n', 1, '-c', 1)->{bytes} } grep { $url{"${k}_$_"} } qw(agent nginx blob);
	die "$k: the agent answers $len{agent} bytes, nginx $len{nginx}"
	  unless $len{agent} == $len{nginx} && ($len{blob} // $len{agent}) == $len{agent};
}

# One ab run of measure $k ('large', 'small' or 'warm') by $side: the
# agent's route, the peer (nginx), or the agent's blob route for the same
# file (GET /api/blobs/SHA256: the same file answer without the SQL call,
# to tell the call's share from the serving's).
my (%r, %fail, %tls);
sub ab_side
{
	my ($k, $side) = @_;
	my $a = ab($url{"${k}_$side"}, '-t', $seconds, '-n', 100000000, '-c', $clients);
	push @{ $r{$k}{$side} }, $k eq 'large' ? $a->{mbs} : $a->{rps};
	$fail{$k}{$side} += $a->{failed};
	$tls{$side} = $a->{tls};
	$r{"${k}_bytes"} = $a->{bytes};
	return;
}

for my $round (1 .. $rounds)
{
	# Each side goes first, second and last in turn.
	my @sides = qw(agent nginx blob);
	push @sides, shift @sides for 1 .. ($round - 1) % 3;
	ab_side('large', $_) for @sides;
	ab_side('small', $_) for @sides;
	for my $side ($round % 2 ? qw(agent cli) : qw(cli agent))
	{
		my ($rate, $bad) = $side eq 'agent' ? cold_agent() : cold_cli();
		push @{ $r{cold}{$side} }, $rate;
		$fail{cold}{$side} += $bad;
	}
	ab_side('warm', $_) for grep { $_ ne 'blob' } @sides;
}

if ($perf)
{
	for my $k (qw(large small warm cold))
	{
		for my $side ($k eq 'cold' ? qw(agent cli) : qw(agent nginx blob))
		{
			next unless $k eq 'cold' || $url{"${k}_$side"};
			my $prof = IPC::Run::start([ 'perf', 'record', '-a', '-g', '-F', '997', '-o', "$perf.$k.$side" ],
				'>', \my $po, '2>', \my $pe);
			sleep(0.3);
			my $what;
			if ($k eq 'cold')
			{
				my ($rate) = $side eq 'agent' ? cold_agent() : cold_cli();
				$what = sprintf('%.1f thumbnails/s, %d thumbnails', $rate, $n_thumbs);
			}
			else
			{
				my $a = ab($url{"${k}_$side"}, '-t', $seconds, '-n', 100000000, '-c', $clients);
				$what = sprintf('%.0f requests/s, %.0f MB/s, %d requests', $a->{rps}, $a->{mbs}, $a->{done});
			}
			$prof->signal('INT');
			$prof->finish;
			die "perf record: $pe" unless -s "$perf.$k.$side";
			out("## perf profile $perf.$k.$side: $what");
		}
	}
}

# Did both make the same thumbnail? (Same libvips call and options: the
# bytes should match.)
my $same = 0;
for my $img (@cold)
{
	my ($mine) = glob(thumb_dir($thumb_size) . '/' . substr($img->{sha256}, 0, 2) . "/$img->{sha256}.*");
	my $theirs = "$vt_out/$img->{sha256}.jpg";
	next unless $mine && -f $theirs;
	$same++ if PostgreSQL::Test::Utils::slurp_file($mine) eq PostgreSQL::Test::Utils::slurp_file($theirs);
}

sub fmt { my ($v) = @_; my $t = $v >= 100 ? sprintf('%.0f', $v) : sprintf('%.1f', $v); 1 while $t =~ s/^(\d+)(\d{3})/$1,$2/; return $t; }
sub rounds_of { return join(' ', map { fmt($_) } @{ $_[0] }); }
sub kb { return sprintf('%.0f KB', $_[0] / 1000); }

my $cores = run_or_die('nproc');
chomp $cores;
my $vips = run_or_die('vips', '--version');
chomp $vips;
my ($ngx_version) = (`/usr/sbin/nginx -v 2>&1` =~ m{nginx/(\S+)});
sub m_ { return median(@{ $r{ $_[0] }{ $_[1] } }); }
out("## $cores cores; $rounds interleaved rounds, medians; ab -k -c $clients -t $seconds over TLS (agent: $tls{agent}; "
	  . "nginx: $tls{nginx}); nginx $ngx_version with 2 workers; agent with 2 event-loop threads; $vips");
out('| file answers, ab -k -c ' . $clients . ', TLS | agent, `/api/images/ID/...` | nginx, same file | '
	  . '**agent / nginx** | agent, `/api/blobs/SHA` (no SQL) | blobs / nginx | agent, rounds | nginx, rounds | failed |');
out('|---|---:|---:|---:|---:|---:|---|---|---:|');
for my $row ([ 'large', 'content of a ' . kb($r{large_bytes}) . " JPEG (1600x1200), MB/s" ],
	[ 'small', 'content of a ' . kb($r{small_bytes}) . " JPEG (256x192), requests/s" ],
	[ 'warm', "a kept $thumb_size thumbnail (" . kb($r{warm_bytes}) . "), requests/s" ])
{
	my ($k, $what) = @$row;
	my $blob = $r{$k}{blob} ? m_($k, 'blob') : undef;
	out(sprintf('| %s | %s | %s | **%.2fx** | %s | %s | %s | %s | %d |', $what, fmt(m_($k, 'agent')),
		fmt(m_($k, 'nginx')), m_($k, 'agent') / m_($k, 'nginx'), defined $blob ? fmt($blob) : '',
		defined $blob ? sprintf('%.2fx', $blob / m_($k, 'nginx')) : '', rounds_of($r{$k}{agent}),
		rounds_of($r{$k}{nginx}), $fail{$k}{agent} + $fail{$k}{nginx} + ($fail{$k}{blob} // 0)));
}
out("## thumbnails made on request: the agent against the vipsthumbnail CLI, the same files and options");
out("| cold thumbnails ($thumb_size) of $n_thumbs 1600x1200 JPEGs, $par at a time | thumbnails/s | rounds | failed |");
out('|---|---:|---|---:|');
out(sprintf('| agent, `/api/images/ID/thumbnail?size=%d`, thumbnail_threads %d, %d requests in flight | %s | %s | %d |',
	$thumb_size, $par, $in_flight, fmt(m_('cold', 'agent')), rounds_of($r{cold}{agent}), $fail{cold}{agent}));
out(sprintf('| `vipsthumbnail --size %d -o %%s.jpg[Q=80,strip]`, `xargs -P %d`, VIPS_CONCURRENCY=1 | %s | %s | %d |',
	$thumb_size, $par, fmt(m_('cold', 'cli')), rounds_of($r{cold}{cli}), $fail{cold}{cli}));
out(sprintf('| **agent / vipsthumbnail** | **%.2fx** | | |', m_('cold', 'agent') / m_('cold', 'cli')));
out("## thumbnails byte-identical between the agent and vipsthumbnail: $same of $n_thumbs");

agent_stop($_) for @agents;
@agents = ();
$ngx->kill_kill;
@started = ();
$_->stop for ($p, $s);
