# The nginx test image that the pipeline builds with its own kaniko executor (`invoke build-image`)
# and then checks (`invoke smoke`): the nginx welcome page on port 8080, served by a non-root user.
#
# The base is pinned by digest. Offline, the pipeline builds the same Dockerfile on a base it makes from
# Debian packages (pipeline/nginxbase.py) and passes it with `--build-arg BASE_IMAGE=...`
# (`invoke build-image --base-image REF`). Any base works that has nginx, /etc/nginx/mime.types and
# the welcome page at /usr/share/nginx/html/index.html.
ARG BASE_IMAGE=docker.io/nginxinc/nginx-unprivileged:1.27-bookworm@sha256:f9dfa9c20b2b0b7c5cc830374f22f23dee3f750b6c5291ca7e0330b5c88e6403
FROM ${BASE_IMAGE}

# The build steps run as root (kaniko runs them with only CHOWN, FOWNER and DAC_OVERRIDE).
USER 0

COPY nginx/nginx.conf /etc/nginx/nginx.conf

# Drop the base's own server definitions (Debian's listens on port 80, which needs a capability),
# and give the unprivileged user the document root, so the running image needs nothing from root.
RUN set -eu; \
    rm -f /etc/nginx/conf.d/*.conf /etc/nginx/sites-enabled/*; \
    chown -R 101:101 /usr/share/nginx/html; \
    chmod 0644 /etc/nginx/nginx.conf

USER 101:101
EXPOSE 8080
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
