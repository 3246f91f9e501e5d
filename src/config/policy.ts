/**
 * Config keys of the admission issue (3): fields spread into every service, and root sections.
 */
export const policyServiceFields = {};
export const policyRootFields = {};
