import type { Module } from "h5wasm";

/** The h5wasm Emscripten module's type (h5wasm exports the value, not a type name). */
export type H5Module = typeof Module;
