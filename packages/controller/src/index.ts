/** Placeholder module; filled by its issue. */ export {};
