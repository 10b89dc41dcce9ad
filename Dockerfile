# tete in a container: built in one stage, run from a slim image.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/target/release/tete /usr/local/bin/tete
COPY config ./config
COPY views ./views
COPY public ./public
ENV TETE_ENVIRONMENT=production
EXPOSE 8080
CMD ["tete"]
