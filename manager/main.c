/* cpm: command line, configuration, then the master loop. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arbiter.h"
#include "config.h"
#include "control.h"
#include "log.h"
#include "process.h"
#include "proctitle.h"
#include "xalloc.h"

/* Never a file in the current directory: as root, whoever can write
 * there would choose what runs. */
#define DEFAULT_CONFIG "/etc/cpm/cpm.json"

static void usage(FILE *f)
{
	fprintf(f, "usage: cpm [-tD] [-c FILE] [-b ADDR]... [-w N]\n"
		   "       cpm --cgi DIR [-b ADDR]... [-w N]\n"
		   "       cpm -s COMMAND [ARG] [-c FILE]\n"
		   "       cpm -v | -h\n"
		   "\n"
		   "  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
		   "  -t, --test          check the configuration and exit\n"
		   "  -b, --bind ADDR     listen on ADDR (HOST:PORT, [V6]:PORT, :PORT, unix:/PATH); repeatable\n"
		   "  -w, --workers N     number of worker processes\n"
		   "  -D, --daemon        run in the background (after binding)\n"
		   "      --cgi DIR       serve the executables in DIR as CGI at /, without a config file\n"
		   "  -s COMMAND [ARG]    tell the running master (through the control socket of -c FILE):\n"
		   "                      reload, reopen, quit, stop, restart-pool NAME\n"
		   "  -v, --version       print the version\n"
		   "  -h, --help          this help\n");
}

/* fds 0, 1 and 2 must be open, or a pipe could land there and dup2 onto
 * a CGI's stdin would clobber it */
static void ensure_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		int n = open("/dev/null", O_RDWR);
		if (n >= 0 && n != fd) {
			dup2(n, fd);
			close(n);
		}
	}
}

#define CONTROL_WAIT_MS 30000 /* a reload can start many processes */

/* cpm -s: send one command to the master the configuration in file names
 * and print its answer. 0 if it says ok, else 1. */
static int send_command(const char *file, const char *cmd, const char *arg)
{
	char msg[4096], shown[4096];
	if (control_command_check(cmd, arg, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "cpm: -s: %s\n", msg);
		return 2;
	}
	char *path = config_control_path(file, msg, sizeof(msg));
	if (!path) {
		fprintf(stderr, "cpm: %s\ncpm: the master was not asked\n", msg);
		return 1;
	}
	int r = control_request(path, cmd, arg, CONTROL_WAIT_MS, msg, sizeof(msg));
	free(path);
	log_escape(shown, sizeof(shown), msg, strlen(msg), NULL, NULL); /* the master's words, on a terminal */
	fprintf(r == 0 ? stdout : stderr, "cpm: %s\n", shown);
	return r == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"test", no_argument, NULL, 't'},
	    {"bind", required_argument, NULL, 'b'},
	    {"workers", required_argument, NULL, 'w'},
	    {"cgi", required_argument, NULL, 'C'},
	    {"version", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"daemon", no_argument, NULL, 'D'},
	    {NULL, 0, NULL, 0},
	};
	ensure_std_fds();
	/* the path and arguments to exec again on USR2 (before proctitle
	 * reuses the argv area); the path is read now, so a binary replaced
	 * on disk later is the one started */
	static char exe[4096];
	ssize_t el = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[el > 0 ? el : 0] = 0;
	/* static: kept for the life of the process (a leak checker sees it
	 * reachable at exit) */
	static char **argv_copy;
	argv_copy = xcalloc((size_t)argc + 1, sizeof(char *));
	for (int i = 0; i < argc; i++)
		argv_copy[i] = xstrdup(argv[i]);
	proctitle_init(argc, argv);
	const char *file = NULL, *cgi_dir = NULL, *command = NULL;
	int test = 0, workers = 0, daemon = 0;
	char **binds = NULL;
	size_t nbinds = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "c:tb:w:vhDs:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': file = optarg; break;
		case 't': test = 1; break;
		case 'D': daemon = 1; break;
		case 'b':
			if (config_listen_valid(optarg) < 0) {
				fprintf(stderr, "cpm: -b %s: expected HOST:PORT, [V6]:PORT, :PORT or unix:/PATH\n",
					optarg);
				usage(stderr);
				return 2;
			}
			binds = xrealloc(binds, (nbinds + 1) * sizeof(*binds));
			binds[nbinds++] = optarg;
			break;
		case 'w': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || n < 1 || n > 1024) {
				fprintf(stderr, "cpm: -w: expected a number from 1 to 1024\n");
				usage(stderr);
				return 2;
			}
			workers = (int)n;
			break;
		}
		case 'C': cgi_dir = optarg; break;
		case 's': command = optarg; break;
		case 'v': printf("cpm %s\n", CPM_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	/* relative paths (the config file's, and those in it) stay relative
	 * to this directory across a later "chdir", reloads and USR2; -s
	 * finds the control socket the way the master does */
	char cwd[4096];
	if (getcwd(cwd, sizeof(cwd)))
		config_set_base_dir(cwd);
	if (command) {
		if (test || daemon || workers || nbinds || cgi_dir || argc - optind > 1) {
			fprintf(stderr, "cpm: -s takes only -c FILE and the command's argument\n");
			usage(stderr);
			return 2;
		}
		int r = send_command(file ? file : DEFAULT_CONFIG, command, optind < argc ? argv[optind] : NULL);
		free(binds);
		config_set_base_dir(NULL);
		return r;
	}
	if (cgi_dir && file) {
		fprintf(stderr, "cpm: --cgi serves one directory without a configuration file; give -c FILE or "
				"--cgi DIR, not both\n");
		return 2;
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	char err[1024];
	const char *shown = "--cgi";
	struct config *cf;
	int hint = 0;
	config_set_privileged(geteuid() == 0);
	if (cgi_dir) {
		cf = config_quick_cgi(cgi_dir, err, sizeof(err));
	} else {
		if (!file) {
			file = DEFAULT_CONFIG;
			hint = access("etc/cpm.json", F_OK) == 0;
			if (access(file, F_OK) < 0 && errno == ENOENT) {
				fprintf(stderr,
					"cpm: no configuration: %s does not exist\n"
					"cpm: start with -c FILE (a configuration file) or --cgi DIR (serve the "
					"executables in DIR at /); cpm -h for more\n",
					file);
				if (hint)
					fprintf(stderr, "cpm: etc/cpm.json here is not read without -c (give -c "
							"etc/cpm.json)\n");
				return 2;
			}
		}
		cf = config_load(file, err, sizeof(err));
		shown = file;
		if (cf && file[0] != '/' && cwd[0]) {
			static char abs_file[8192];
			snprintf(abs_file, sizeof(abs_file), "%s/%s", cwd, file);
			file = abs_file; /* what a reload reads */
		}
	}
	if (!cf) {
		fprintf(stderr, "cpm: %s\n", err);
		if (hint)
			fprintf(stderr, "cpm: etc/cpm.json here is not read without -c (give -c etc/cpm.json)\n");
		return 1;
	}
	if (nbinds && config_set_listen(cf, binds, nbinds) < 0) {
		fprintf(stderr, "cpm: -b: expected HOST:PORT, [V6]:PORT, :PORT or unix:/PATH\n");
		return 2;
	}
	if (workers)
		cf->workers = workers;
	if (test) {
		printf("cpm: configuration %s is ok\n", shown);
		config_free(cf);
		free(binds);
		return 0;
	}
	if (arbiter_open_logs(cf) < 0)
		return 1;
	struct arbiter_opts ao = {.config_file = cgi_dir ? NULL : file,
				  .cgi_dir = cgi_dir,
				  .binds = binds,
				  .nbinds = nbinds,
				  .workers = workers,
				  .daemon = daemon,
				  .exe = exe[0] ? exe : argv_copy[0],
				  .argv = argv_copy,
				  .start_dir = cwd};
	int rc = arbiter_run(cf, &ao);
	free(binds); /* -b's list: the arbiter copied what it keeps */
	return rc;
}
