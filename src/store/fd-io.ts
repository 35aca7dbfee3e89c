// Promise forms of node:fs's descriptor write and fsync, for the durable writes.
// ? Not util.promisify: node:util is ~1 ms of every start-up to load in the compiled binary
// (issue 14), and nothing the service does before its first answer needs it.
import { fsync, writeFile } from "node:fs";

/** Writes all of `text` to the descriptor `fd`; rejects with fs's error. */
export function writeFd(fd: number, text: string): Promise<void> {
  return new Promise((resolve, reject) => writeFile(fd, text, (err) => (err ? reject(err) : resolve())));
}

/** fsyncs the descriptor `fd`; resolves once the kernel reports it durable, rejects with fs's error. */
export function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
}
