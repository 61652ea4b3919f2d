"use client";

import { createContext, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { waitFor, waitForElement } from "../lib/dom";
import { useCopilotConfig } from "./CopilotConfigContext";

/**
 * rasa-webchat, talking socket.io to the same `rasa run` as the copilot channel.
 *
 * The widget's standalone build (public/vendor/rasa-webchat.js, made from the npm
 * package by scripts/vendor-webchat.mjs) carries its own React, so it is mounted outside
 * the app's React tree. It keeps its socket session in sessionStorage["chat_session"];
 * that `session_id` is Rasa's sender id, which "Open chat" needs for the injection.
 */

/** rasa-webchat's storage key, and the shape of the part of it we read. */
const CHAT_SESSION_KEY = "chat_session";
type StoredChatSession = { session_id?: string | null };

const SCRIPT_SRC = "/vendor/rasa-webchat.js";
const LAUNCHER = ".rw-launcher";
const CONTAINER = ".rw-widget-container";
const OPEN_CLASS = "rw-chat-open";

type WebChatGlobal = { default: (props: Record<string, unknown>, element?: Element | null) => void };
declare global {
  interface Window {
    WebChat?: WebChatGlobal;
  }
}

export type ChatController = {
  /** True while the chat window is open. */
  isOpen: boolean;
  /** Opens the chat window (waits for the launcher if the socket is still connecting). */
  open: () => Promise<void>;
  /** The socket session id once the server has confirmed it, waiting up to `timeoutMs`. */
  waitForSessionId: (timeoutMs: number) => Promise<string>;
};

const ChatContext = createContext<ChatController | null>(null);

export function readChatSessionId(): string | null {
  try {
    const raw = window.sessionStorage.getItem(CHAT_SESSION_KEY);
    const stored = raw ? (JSON.parse(raw) as StoredChatSession) : null;
    return typeof stored?.session_id === "string" && stored.session_id ? stored.session_id : null;
  } catch {
    return null;
  }
}

let widgetScript: Promise<WebChatGlobal> | null = null;

/** Loads the widget's bundle once per page, however many times the provider mounts. */
function loadWidgetScript(): Promise<WebChatGlobal> {
  widgetScript ??= new Promise<WebChatGlobal>((resolve, reject) => {
    if (window.WebChat) return resolve(window.WebChat);
    const script = document.createElement("script");
    script.src = SCRIPT_SRC;
    script.async = true;
    script.onload = () => (window.WebChat ? resolve(window.WebChat) : reject(new Error("rasa-webchat did not load")));
    script.onerror = () => reject(new Error(`could not load ${SCRIPT_SRC}`));
    document.head.appendChild(script);
  }).catch((error: unknown) => {
    widgetScript = null; // a later mount may try again
    throw error;
  });
  return widgetScript;
}

export function ChatWidgetProvider({ children }: { children: ReactNode }) {
  const { rasaUrl, user, userHash } = useCopilotConfig();
  const [isOpen, setIsOpen] = useState(false);

  useEffect(() => {
    let observer: MutationObserver | null = null;
    let cancelled = false;
    // Every page load is a fresh chat: forget the previous socket session before mounting.
    window.sessionStorage.removeItem(CHAT_SESSION_KEY);
    loadWidgetScript()
      .then((webchat) => {
        if (cancelled || document.getElementById("rasa-webchat")) return;
        const mount = document.createElement("div");
        mount.id = "rasa-webchat";
        document.body.appendChild(mount);
        webchat.default(
          {
            // The socket proves who it is at connect; the copilot binds the chat session to
            // that user, so /inject and replies act for them only.
            socketUrl: `${rasaUrl}/?user_id=${encodeURIComponent(user.id)}&user_hash=${userHash}`,
            socketPath: "/socket.io/",
            customData: { userId: user.id, userHash, language: "en" },
            title: "Acme Assistant",
            subtitle: `Signed in as ${user.name ?? user.id}`,
            inputTextFieldHint: "Ask about your projects…",
            params: { storage: "session" },
            withRules: false,
            showMessageDate: false,
            customMessageDelay: () => 400,
          },
          mount,
        );
        observer = new MutationObserver(() => {
          setIsOpen(document.querySelector(CONTAINER)?.classList.contains(OPEN_CLASS) ?? false);
        });
        observer.observe(mount, { subtree: true, attributes: true, attributeFilter: ["class"], childList: true });
      })
      .catch((error: unknown) => console.error("chat widget:", error));
    return () => {
      cancelled = true;
      observer?.disconnect();
    };
  }, [rasaUrl, user.id, user.name, userHash]);

  const controller = useMemo<ChatController>(
    () => ({
      isOpen,
      open: async () => {
        const launcher = await waitForElement(LAUNCHER, 10_000);
        if (!document.querySelector(CONTAINER)?.classList.contains(OPEN_CLASS)) (launcher as HTMLElement).click();
      },
      waitForSessionId: (timeoutMs: number) =>
        waitFor(readChatSessionId, timeoutMs, `the chat socket had no session after ${timeoutMs} ms`),
    }),
    [isOpen],
  );

  return <ChatContext.Provider value={controller}>{children}</ChatContext.Provider>;
}

export function useChat(): ChatController {
  const chat = useContext(ChatContext);
  if (chat === null) throw new Error("useChat must be used inside <ChatWidgetProvider>");
  return chat;
}
