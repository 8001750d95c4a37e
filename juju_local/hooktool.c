/* A Juju hook tool of juju_local: the process that dispatched this hook answers it.
 *
 * Installed once per tool name (config-get, relation-set, ...), it sends its name, arguments
 * and input to the ToolServer named by $LOCALJUJU_TOOLS_PORT and prints the answer. The wire
 * format and the handling of `--file` and `key#file=` are toolserver.py's; the bash CLIENT
 * there does the same where no C compiler is found. A hook makes a dozen calls or more, and a
 * bash start plus `cat` costs a few milliseconds each: this costs well under one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct buffer {
    char *data;
    size_t len, cap;
};

static const char *tool = "hook tool";

static void fail(const char *what, const char *detail) {
    fprintf(stderr, "ERROR %s: %s%s%s\n", tool, what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static void append(struct buffer *b, const void *bytes, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = realloc(b->data, cap);
        if (!b->data)
            fail("out of memory", NULL);
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void append_field(struct buffer *b, const char *text) { append(b, text, strlen(text) + 1); }

static void append_count(struct buffer *b, size_t n) {
    char digits[32];
    snprintf(digits, sizeof digits, "%zu", n);
    append_field(b, digits);
}

static void read_fd(int fd, struct buffer *into, const char *name) {
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n == 0)
            return;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail(name, strerror(errno));
        }
        append(into, chunk, (size_t)n);
    }
}

/* A file in this sandbox, or "-" for our stdin: the server cannot see our files. */
static void read_input(const char *path, struct buffer *into) {
    if (strcmp(path, "-") == 0) {
        read_fd(0, into, "stdin");
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail(path, strerror(errno));
    read_fd(fd, into, path);
    close(fd);
}

static char *base64(const struct buffer *in) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(4 * ((in->len + 2) / 3) + 1), *p = out;
    if (!out)
        fail("out of memory", NULL);
    const unsigned char *s = (const unsigned char *)in->data;
    for (size_t i = 0; i < in->len; i += 3) {
        unsigned v = s[i] << 16 | (i + 1 < in->len ? s[i + 1] << 8 : 0) |
                     (i + 2 < in->len ? s[i + 2] : 0);
        *p++ = alphabet[v >> 18 & 63];
        *p++ = alphabet[v >> 12 & 63];
        *p++ = i + 1 < in->len ? alphabet[v >> 6 & 63] : '=';
        *p++ = i + 2 < in->len ? alphabet[v & 63] : '=';
    }
    *p = '\0';
    return out;
}

/* `key#file=PATH` becomes `key#base64=<the file's content>`; any other argument is kept. */
static char *inline_file_argument(char *arg) {
    char *equals = strchr(arg, '=');
    size_t key_len = equals ? (size_t)(equals - arg) : 0;
    if (key_len < 5 || memcmp(equals - 5, "#file", 5) != 0)
        return arg;
    struct buffer content = {0};
    read_input(equals + 1, &content);
    char *encoded = base64(&content);
    size_t name_len = key_len - 5;
    char *out = malloc(name_len + sizeof "#base64=" + strlen(encoded));
    if (!out)
        fail("out of memory", NULL);
    sprintf(out, "%.*s#base64=%s", (int)name_len, arg, encoded);
    return out;
}

static void send_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail("no answer from juju-local", strerror(errno));
        data += n;
        len -= (size_t)n;
    }
}

/* The answer: exit code NUL, stderr length NUL, stderr, then stdout until the server closes. */
static int print_answer(const struct buffer *answer) {
    const char *code_end = memchr(answer->data, '\0', answer->len);
    const char *length_end =
        code_end ? memchr(code_end + 1, '\0', answer->len - (size_t)(code_end + 1 - answer->data))
                 : NULL;
    if (!length_end) {
        fprintf(stderr, "ERROR %s: no answer from juju-local\n", tool);
        return 1;
    }
    size_t errors = strtoul(code_end + 1, NULL, 10);
    const char *body = length_end + 1;
    size_t body_len = answer->len - (size_t)(body - answer->data);
    if (errors > body_len)
        errors = body_len;
    fwrite(body, 1, errors, stderr);
    fwrite(body + errors, 1, body_len - errors, stdout);
    return atoi(answer->data);
}

int main(int argc, char **argv) {
    const char *slash = strrchr(argv[0], '/');
    tool = slash ? slash + 1 : argv[0];
    const char *port = getenv("LOCALJUJU_TOOLS_PORT");
    if (!port || !*port)
        fail("LOCALJUJU_TOOLS_PORT", "not in a juju-local hook");
    const char *token = getenv("LOCALJUJU_TOOLS_TOKEN");

    struct buffer input = {0}, request = {0};
    append_field(&request, token ? token : "");
    append_field(&request, tool);
    append_count(&request, (size_t)(argc - 1));
    const char *previous = "";
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        if (strcmp(previous, "--file") == 0) {
            read_input(arg, &input);
            arg = "-";
        } else if (strncmp(arg, "--file=", 7) == 0) {
            read_input(arg + 7, &input);
            arg = "--file=-";
        } else {
            arg = inline_file_argument(arg);
        }
        append_field(&request, arg);
        previous = arg;
    }
    append_count(&request, input.len);
    if (input.len)
        append(&request, input.data, input.len);

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&server, sizeof server) != 0)
        fail("no answer from juju-local", strerror(errno));
    send_all(fd, request.data, request.len);
    struct buffer answer = {0};
    read_fd(fd, &answer, "no answer from juju-local");
    if (!answer.len) {
        fprintf(stderr, "ERROR %s: no answer from juju-local\n", tool);
        return 1;
    }
    return print_answer(&answer);
}
