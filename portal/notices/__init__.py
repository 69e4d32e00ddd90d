"""Electronic PO box (電子私書箱): targeted, scheduled and life-event notices to residents, with
read receipts (開封確認) and one-click replies (返答機能), delivered to the inbox, Web Push and e-mail."""
