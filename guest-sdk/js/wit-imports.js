// The WIT imports of a weft component, as componentize-js provides them.
// The build bundles this file into the component; the SDK reaches the host
// only through it.
export * as log from 'weft:flow/log@0.2.0';
export * as context from 'weft:flow/context@0.2.0';
export * as tasks from 'weft:flow/tasks@0.2.0';
