# The tapproof image, built from the repository root:
#
#   docker build -f deploy/compose/tapproof.Dockerfile -t tapproof:0.1.0 .
#
# The runtime image is Alpine so that health checks can use its wget. The
# binary is static (no cgo).
FROM golang:1.26.8-alpine3.22 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/tapproof ./cmd/tapproof

FROM alpine:3.22.2
RUN adduser -D -H -u 10001 tapproof \
 && mkdir -p /var/lib/tapproof \
 && chown tapproof /var/lib/tapproof
COPY --from=build /out/tapproof /usr/local/bin/tapproof
USER 10001
ENV TAPPROOF_DATA=/var/lib/tapproof \
    TAPPROOF_HTTP=0.0.0.0:8480
VOLUME /var/lib/tapproof
EXPOSE 8480
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s \
  CMD wget -q -O /dev/null http://127.0.0.1:8480/healthz || exit 1
ENTRYPOINT ["tapproof"]
CMD ["serve"]
