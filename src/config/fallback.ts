/**
 * Config keys of the fallback issue (6): fields spread into every service, and root sections.
 */
export const fallbackServiceFields = {};
export const fallbackRootFields = {};
