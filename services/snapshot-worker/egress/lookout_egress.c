/* lookout_egress.so: loaded into ffmpeg/ffprobe with LD_PRELOAD, it judges the final
 * destination of every IPv4/IPv6 connect(), sendto(), sendmsg() and sendmmsg() against the
 * worker's egress policy and ends the process on the first one the policy refuses.
 *
 * The policy comes in LOOKOUT_EGRESS_POLICY, written by the worker from the same rule list
 * its URL check uses (lookout_shared/addresses.py): "action network [port=N] [at=N]" entries joined
 * by ';', first match wins, no match allows. "embed" judges the IPv4 address found at bit
 * offset N (IPv4-mapped, NAT64, 6to4) with the whole list again and decides by it.
 * A missing or malformed policy refuses every IPv4/IPv6 destination (fail closed).
 *
 * A refusal prints "lookout-egress: refused: address not allowed: ADDRESS port PORT" on
 * stderr and exits with status 86: the run fails at once, with nothing fetched from there.
 * Other address families (AF_UNIX...) pass untouched.
 *
 * It also sets what the worker used to set between fork and exec, so the worker can start
 * its children with vfork (a fork of the worker's whole address space took tens of
 * milliseconds, with its event loop stopped): with LOOKOUT_CHILD_PARENT_PID the process gets
 * SIGKILL when that parent dies (PR_SET_PDEATHSIG; it exits at once if the parent is already
 * gone), and LOOKOUT_CHILD_MAX_DATA_BYTES caps its private memory (RLIMIT_DATA). Either
 * failing ends the process before main: it never runs without them. Both variables are then
 * removed: a process it starts inherits the limit, as with a limit set before exec.
 *
 * Build: gcc -O2 -shared -fPIC -o lookout_egress.so lookout_egress.c -ldl
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_RULES 4096
#define REFUSED_EXIT 86

enum action { DENY, ALLOW, EMBED };

struct rule {
    enum action action;
    int family;
    unsigned char net[16];
    int prefix;
    int port; /* -1: every port */
    int at;   /* EMBED: bit offset of the IPv4 address */
};

static struct rule rules[MAX_RULES];
static int rule_count;
static int policy_ok;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int (*real_connect)(int, const struct sockaddr *, socklen_t);
static ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static int (*real_sendmmsg)(int, struct mmsghdr *, unsigned int, int);

static int parse_rule(char *text, struct rule *r) {
    char action[8], network[64];
    int consumed = 0;
    if (sscanf(text, " %7s %63s%n", action, network, &consumed) != 2)
        return 0;
    if (strcmp(action, "deny") == 0) r->action = DENY;
    else if (strcmp(action, "allow") == 0) r->action = ALLOW;
    else if (strcmp(action, "embed") == 0) r->action = EMBED;
    else return 0;
    char *slash = strchr(network, '/');
    if (slash == NULL) return 0;
    *slash = '\0';
    char *end;
    long prefix = strtol(slash + 1, &end, 10);
    if (*end != '\0' || end == slash + 1) return 0;
    memset(r->net, 0, sizeof r->net);
    if (inet_pton(AF_INET, network, r->net) == 1) r->family = AF_INET;
    else if (inet_pton(AF_INET6, network, r->net) == 1) r->family = AF_INET6;
    else return 0;
    if (prefix < 0 || prefix > (r->family == AF_INET ? 32 : 128)) return 0;
    r->prefix = (int)prefix;
    r->port = -1;
    r->at = -1;
    char *rest = text + consumed;
    char option[16];
    int value, used;
    while (sscanf(rest, " %15[a-z]=%d%n", option, &value, &used) == 2) {
        if (strcmp(option, "port") == 0 && value >= 0 && value <= 65535) r->port = value;
        else if (strcmp(option, "at") == 0 && value >= 0 && value <= 96 && value % 8 == 0) r->at = value;
        else return 0;
        rest += used;
    }
    while (*rest == ' ') rest++;
    if (*rest != '\0') return 0;
    /* An embedded IPv4 address only exists inside an IPv6 network. */
    if ((r->action == EMBED) != (r->at >= 0) || (r->action == EMBED && r->family != AF_INET6))
        return 0;
    return 1;
}

static void load_policy(void) {
    real_connect = dlsym(RTLD_NEXT, "connect");
    real_sendto = dlsym(RTLD_NEXT, "sendto");
    real_sendmsg = dlsym(RTLD_NEXT, "sendmsg");
    real_sendmmsg = dlsym(RTLD_NEXT, "sendmmsg");
    const char *env = getenv("LOOKOUT_EGRESS_POLICY");
    if (env == NULL) return;
    char *copy = strdup(env);
    if (copy == NULL) return;
    int ok = 1;
    char *save = NULL;
    for (char *item = strtok_r(copy, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
        if (rule_count == MAX_RULES || !parse_rule(item, &rules[rule_count])) {
            ok = 0;
            break;
        }
        rule_count++;
    }
    free(copy);
    policy_ok = ok && rule_count > 0;
}

#define CHILD_SETUP_FAILED 126

static void hold_to_parent(void) {
    const char *parent = getenv("LOOKOUT_CHILD_PARENT_PID");
    if (parent != NULL) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) _exit(CHILD_SETUP_FAILED);
        /* The parent died before prctl: nobody will signal us. */
        if (getppid() != (pid_t)strtol(parent, NULL, 10)) _exit(CHILD_SETUP_FAILED);
    }
    const char *data = getenv("LOOKOUT_CHILD_MAX_DATA_BYTES");
    if (data != NULL) {
        struct rlimit limit;
        rlim_t wanted = (rlim_t)strtoull(data, NULL, 10);
        if (getrlimit(RLIMIT_DATA, &limit) != 0) _exit(CHILD_SETUP_FAILED);
        if (limit.rlim_max != RLIM_INFINITY && wanted > limit.rlim_max) wanted = limit.rlim_max;
        limit.rlim_cur = limit.rlim_max = wanted;
        if (setrlimit(RLIMIT_DATA, &limit) != 0) _exit(CHILD_SETUP_FAILED);
    }
    /* Meant for this process only: its own children inherit the limit itself, and their
     * parent is not the worker. */
    unsetenv("LOOKOUT_CHILD_PARENT_PID");
    unsetenv("LOOKOUT_CHILD_MAX_DATA_BYTES");
}

__attribute__((constructor)) static void init(void) {
    hold_to_parent();
    pthread_once(&once, load_policy);
}

static int in_network(int family, const unsigned char *addr, const struct rule *r) {
    if (family != r->family) return 0;
    int bits = r->prefix, i = 0;
    for (; bits >= 8; bits -= 8, i++)
        if (addr[i] != r->net[i]) return 0;
    if (bits == 0) return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - bits));
    return (addr[i] & mask) == (r->net[i] & mask);
}

/* 1 when the policy lets ADDR (of FAMILY) on PORT be reached. */
static int allowed(int family, const unsigned char *addr, int port, int depth) {
    for (int i = 0; i < rule_count; i++) {
        const struct rule *r = &rules[i];
        if (!in_network(family, addr, r) || (r->port >= 0 && r->port != port)) continue;
        if (r->action == ALLOW) return 1;
        if (r->action == DENY) return 0;
        return depth == 0 && allowed(AF_INET, addr + r->at / 8, port, 1);
    }
    return 1;
}

static void refuse(int family, const void *addr, int port) {
    char text[INET6_ADDRSTRLEN] = "?";
    inet_ntop(family, addr, text, sizeof text);
    char line[160];
    int n = snprintf(line, sizeof line,
                     policy_ok ? "lookout-egress: refused: address not allowed: %s port %d\n"
                               : "lookout-egress: refused: no valid egress policy (%s port %d)\n",
                     text, port);
    if (n > 0) {
        ssize_t ignored = write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)ignored;
    }
    _exit(REFUSED_EXIT);
}

/* Returns only when the destination may be reached (or is not IPv4/IPv6). */
static void check(const struct sockaddr *sa, socklen_t len) {
    pthread_once(&once, load_policy);
    if (sa == NULL || len < (socklen_t)sizeof(sa_family_t)) return;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        int port = ntohs(in->sin_port);
        if (!policy_ok || !allowed(AF_INET, (const unsigned char *)&in->sin_addr, port, 0))
            refuse(AF_INET, &in->sin_addr, port);
    } else if (sa->sa_family == AF_INET6 && len >= 24) { /* 24: without sin6_scope_id */
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        int port = ntohs(in6->sin6_port);
        if (!policy_ok || !allowed(AF_INET6, in6->sin6_addr.s6_addr, port, 0))
            refuse(AF_INET6, &in6->sin6_addr, port);
    } else if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
        refuse(sa->sa_family, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 0); /* truncated address */
    }
}

int connect(int fd, const struct sockaddr *sa, socklen_t len) {
    check(sa, len);
    return real_connect(fd, sa, len);
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa, socklen_t len) {
    if (sa != NULL) check(sa, len);
    return real_sendto(fd, buf, n, flags, sa, len);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
    if (msg != NULL && msg->msg_name != NULL) check(msg->msg_name, msg->msg_namelen);
    return real_sendmsg(fd, msg, flags);
}

int sendmmsg(int fd, struct mmsghdr *vec, unsigned int count, int flags) {
    for (unsigned int i = 0; vec != NULL && i < count; i++)
        if (vec[i].msg_hdr.msg_name != NULL) check(vec[i].msg_hdr.msg_name, vec[i].msg_hdr.msg_namelen);
    return real_sendmmsg(fd, vec, count, flags);
}
