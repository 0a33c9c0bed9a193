// Notifications: the panel (unread count, filters, mark as read) and the list item both the
// panel and the patient view show.
import { request } from "./api.js";
import { clockTime, el } from "./dom.js";
import { settings } from "./settings.js";

// A screenful: at tablet width the panel sits under the ward, and every notification at
// once grew the page by thousands of pixels.
const PANEL_SIZE = 8;

export function notificationItem(notification, onRead) {
  // read_at is the caller's own (API answers); live events, sent to everyone, carry read_by.
  const read = notification.read_at != null
    || (notification.read_by || []).some((reading) => reading.user_id === settings.userId);
  const category = notification.category || "";
  const status = notification.processing_status;
  const analysis = category
    ? `${category}${notification.confidence != null ? ` · ${Math.round(notification.confidence * 100)}%` : ""}`
    : status === "failed" ? "analysis failed" : "analysing…";
  return el("li", {
    class: "notification",
    dataset: { id: notification.id, category, status, read: String(read) },
  },
  el("div", { class: "notification-head" },
    el("span", { class: "notification-title" }, notification.title),
    read ? null : el("button", {
      type: "button", class: "mark-read", title: "Mark as read",
      onclick: (event) => { event.currentTarget.disabled = true; onRead(notification.id); },
    }, "Mark read")),
  el("div", { class: "notification-meta" },
    el("span", { class: "category", title: notification.failure_reason || "" }, analysis),
    el("time", { datetime: notification.created_at }, clockTime(notification.created_at)),
    notification.keywords?.length ? el("span", {}, notification.keywords.join(", ")) : null),
  el("p", { class: "notification-text" }, notification.text));
}

export async function markRead(id) {
  await request(`/notifications/${id}/read`, { method: "POST" });
}

export class NotificationsPanel {
  constructor({ list, empty, count, category, unread, newer, older, page }, onChanged) {
    this.list = list;
    this.empty = empty;
    this.count = count;
    this.category = category;
    this.unread = unread;
    this.newer = newer;
    this.older = older;
    this.pageLabel = page;
    this.onChanged = onChanged;
    this.page = 1;
    const first = () => { this.page = 1; this.load(); };
    category.addEventListener("change", first);
    unread.addEventListener("change", first);
    newer.addEventListener("click", () => { this.page = Math.max(1, this.page - 1); this.load(); });
    older.addEventListener("click", () => { this.page += 1; this.load(); });
  }

  async load() {
    const params = { page: this.page, page_size: PANEL_SIZE, category: this.category.value };
    if (this.unread.checked) params.read = "false";
    const [{ body, pagination: pages }, { pagination }] = await Promise.all([
      request("/notifications", { params }),
      request("/notifications", { params: { read: "false", page_size: 1 } }),
    ]);
    const last = Math.max(1, pages?.last_page || 1);
    if (this.page > last) {
      this.page = last;
      return this.load();
    }
    this.pageLabel.textContent = `${this.page} / ${last}`;
    this.newer.disabled = this.page <= 1;
    this.older.disabled = this.page >= last;
    this.list.replaceChildren(...body.map((n) => notificationItem(n, (id) => this.read(id))));
    this.empty.hidden = body.length > 0;
    const unread = pagination?.total ?? 0;
    this.count.textContent = String(unread);
    this.count.dataset.zero = String(unread === 0);
    document.title = unread ? `(${unread}) Vigil — central station` : "Vigil — central station";
  }

  async read(id) {
    await markRead(id);
    await this.onChanged();
  }
}
