# The nginx test image that the pipeline builds with its own kaniko executor (`invoke build-image`)
# and then checks (`invoke smoke`): the nginx welcome page on port 8080, served by a non-root user.
#
# The base is pinned by digest. Offline, the pipeline builds this same Dockerfile on a base it makes
# from Debian packages (pipeline/services/nginxbase.py), passed with `--build-arg BASE_IMAGE=...`
# (`invoke build-image --base-image REF`). Any base works that has nginx on PATH,
# /etc/nginx/mime.types and the welcome page at /usr/share/nginx/html/index.html.
ARG BASE_IMAGE=docker.io/nginxinc/nginx-unprivileged:1.27-bookworm@sha256:f9dfa9c20b2b0b7c5cc830374f22f23dee3f750b6c5291ca7e0330b5c88e6403
FROM ${BASE_IMAGE}

# kaniko's work: a new layer with the project's nginx config (port 8080, pid and temp files under
# /tmp, no `user` directive), owned by root and read-only for the unprivileged user. kaniko sets the
# owner and mode itself, which is what CHOWN and FOWNER in the README's profile are for.
#
# No RUN here on purpose: with the README's profile (every capability dropped but CHOWN, FOWNER and
# DAC_OVERRIDE), kaniko cannot start a RUN step in a stage that has a USER (both bases do): it sets the
# user's groups with setgroups(2), which needs CAP_SETGID ("fork/exec /bin/sh: operation not permitted").
COPY --chown=0:0 --chmod=0644 nginx/nginx.conf /etc/nginx/nginx.conf

USER 101:101
EXPOSE 8080
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
