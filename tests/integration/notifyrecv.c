/* notifyrecv: a test tool standing in for systemd's notification socket (sd_notify,
 * NOTIFY_SOCKET). It binds a unix datagram socket at PATH and prints, for each variable
 * of each datagram, one line "PID VAR=VALUE" (the sender's pid from its credentials),
 * flushed at once, until it is killed.
 *
 *   notifyrecv PATH */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd, one = 1;

    if (argc != 2 || strlen(argv[1]) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "usage: notifyrecv PATH (at most %zu bytes)\n", sizeof(addr.sun_path) - 1);
        return 2;
    }
    strcpy(addr.sun_path, argv[1]);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        perror("notifyrecv");
        return 1;
    }
    for (;;) {
        char buf[4096], cbuf[CMSG_SPACE(sizeof(struct ucred))];
        struct iovec iov = {buf, sizeof(buf) - 1};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                           .msg_controllen = sizeof(cbuf)};
        ssize_t n = recvmsg(fd, &m, 0);
        if (n < 0)
            continue;
        buf[n] = '\0';
        long pid = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                struct ucred cred;
                memcpy(&cred, CMSG_DATA(c), sizeof(cred));
                pid = cred.pid;
            }
        for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save))
            printf("%ld %s\n", pid, line);
        fflush(stdout);
    }
}
