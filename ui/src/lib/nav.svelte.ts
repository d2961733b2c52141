// Which page shows: in a store so a message anywhere can lead to the page that fixes it.
export type Page = "overview" | "projects" | "environments" | "backends" | "runtimes" | "settings";
export const nav = $state({ page: "overview" as Page });
