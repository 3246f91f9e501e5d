/**
 * Config keys of the authentication issue (4): fields spread into every service, and root sections.
 */
export const authServiceFields = {};
export const authRootFields = {};
